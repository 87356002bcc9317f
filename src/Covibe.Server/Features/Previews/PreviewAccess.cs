using System.Collections.Concurrent;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// Who may see a team's preview: its members, through a one-time link (<c>POST /api/preview/link</c>, valid about a
/// minute) that the preview's origin exchanges for a cookie of its own. Nothing long-lived goes into a URL, and the
/// member's Covibe login never reaches the preview's origin. Access ends with the login it came from.
/// </summary>
public sealed class PreviewAccess
{
    public const string CookieName = "covibe_preview";
    public const string OpenPath = "/.covibe/open";
    private const string Link = "link";
    private const string Session = "session";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, (string TeamId, string SessionId, DateTime Until)> _allowed = new();
    private readonly IDbContextFactory<CovibeDb> _dbs;
    private readonly PreviewUrls _urls;
    private readonly IOptions<PreviewsOptions> _options;
    private readonly TimeProvider _time;

    public PreviewAccess(IDbContextFactory<CovibeDb> dbs, PreviewUrls urls, SessionEvents sessions, IOptions<PreviewsOptions> options, TimeProvider time)
    {
        _dbs = dbs;
        _urls = urls;
        _options = options;
        _time = time;
        sessions.Revoked += ids =>
        {
            foreach (var (hash, entry) in _allowed)
            {
                if (ids.Contains(entry.SessionId))
                {
                    _allowed.TryRemove(hash, out _);
                }
            }
        };
    }

    /// <summary>A one-time link for <paramref name="member"/> that opens the team's preview.</summary>
    public async Task<PreviewLinkResponse> LinkAsync(Caller member, string? path, CancellationToken cancellationToken)
    {
        var code = Tokens.NewToken(32);
        var now = _time.GetUtcNow().UtcDateTime;
        var expires = now.AddSeconds(_options.Value.LinkSeconds);
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        db.PreviewGrants.Add(new PreviewGrant
        {
            Id = Tokens.NewId(), Kind = Link, TokenHash = Tokens.Hash(code), TeamId = member.TeamId, UserId = member.UserId,
            SessionId = member.SessionId, CreatedAt = now, ExpiresAt = expires,
        });
        await db.SaveChangesAsync(cancellationToken);
        var target = SafePath(path);
        var url = $"{_urls.Origin(member.TeamId)}{OpenPath}?code={code}" + (target == "/" ? "" : "&path=" + Uri.EscapeDataString(target));
        return new PreviewLinkResponse(url, expires);
    }

    /// <summary>Uses a link's code (once) on the team's origin; answers the preview session's token for the cookie, or null.</summary>
    public async Task<(string Token, DateTime Expires)?> OpenAsync(string teamId, string? code, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(code) || code.Length > 100)
        {
            return null;
        }
        var hash = Tokens.Hash(code);
        var now = _time.GetUtcNow().UtcDateTime;
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        // One use only, even when two requests race with the same code.
        var used = await db.PreviewGrants
            .Where(g => g.TokenHash == hash && g.Kind == Link && g.TeamId == teamId && g.UsedAt == null && g.ExpiresAt > now)
            .ExecuteUpdateAsync(s => s.SetProperty(g => g.UsedAt, now), cancellationToken);
        if (used != 1)
        {
            return null;
        }
        var link = await db.PreviewGrants.AsNoTracking().SingleAsync(g => g.TokenHash == hash, cancellationToken);
        var login = await LoginAsync(db, link.SessionId, link.UserId, teamId, now, cancellationToken);
        if (login is null)
        {
            return null;
        }
        var token = Tokens.NewToken(32);
        var expires = new[] { now.AddHours(_options.Value.SessionHours), login.Value }.Min();
        db.PreviewGrants.Add(new PreviewGrant
        {
            Id = Tokens.NewId(), Kind = Session, TokenHash = Tokens.Hash(token), TeamId = teamId, UserId = link.UserId,
            SessionId = link.SessionId, CreatedAt = now, ExpiresAt = expires,
        });
        await db.Set<PreviewGrant>().Where(g => g.ExpiresAt < now.AddDays(-1)).ExecuteDeleteAsync(cancellationToken);
        await db.SaveChangesAsync(cancellationToken);
        return (token, expires);
    }

    /// <summary>Whether the preview session <paramref name="token"/> (the cookie) lets its holder see <paramref name="teamId"/>'s preview.</summary>
    public async Task<bool> AllowsAsync(string teamId, string? token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return false;
        }
        var hash = Tokens.Hash(token);
        var now = _time.GetUtcNow().UtcDateTime;
        if (_allowed.TryGetValue(hash, out var cached) && cached.Until > now)
        {
            return cached.TeamId == teamId;
        }
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        var grant = await db.PreviewGrants.AsNoTracking()
            .SingleOrDefaultAsync(g => g.TokenHash == hash && g.Kind == Session && g.ExpiresAt > now, cancellationToken);
        if (grant is null || grant.TeamId != teamId || await LoginAsync(db, grant.SessionId, grant.UserId, teamId, now, cancellationToken) is null)
        {
            _allowed.TryRemove(hash, out _);
            return false;
        }
        var until = new[] { now + CacheFor, grant.ExpiresAt }.Min();
        _allowed[hash] = (grant.TeamId, grant.SessionId, until);
        return true;
    }

    /// <summary>When the member's login (still valid, still in the team) ends; null when it has.</summary>
    private static async Task<DateTime?> LoginAsync(CovibeDb db, string sessionId, string userId, string teamId, DateTime now, CancellationToken cancellationToken) =>
        await db.Sessions.AsNoTracking()
            .Where(s => s.Id == sessionId && s.UserId == userId && s.RevokedAt == null && s.ExpiresAt > now
                && s.User!.TeamId == teamId && s.User.RemovedAt == null)
            .Select(s => (DateTime?)s.ExpiresAt).SingleOrDefaultAsync(cancellationToken);

    /// <summary>A path on the preview (never another origin: no scheme, no <c>//</c>).</summary>
    internal static string SafePath(string? path) =>
        path is { Length: > 0 and < 2000 } && path.StartsWith('/') && !path.StartsWith("//", StringComparison.Ordinal) && !path.Contains('\\', StringComparison.Ordinal)
            && !path.Any(char.IsControl) ? path : "/";
}
