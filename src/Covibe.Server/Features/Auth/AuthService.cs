using Covibe.Protocol;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Auth;

/// <summary>
/// Login sessions: each is a family of refresh tokens, rotated on every use. Presenting a token
/// that was already used means it leaked, so the whole family is revoked.
/// </summary>
public sealed class AuthService(
    IDbContextFactory<CovibeDb> dbs,
    TokenService tokens,
    IOptions<AuthOptions> options,
    TimeProvider time,
    SessionEvents events,
    ILogger<AuthService> logger)
{
    /// <summary>Adds a new session to <paramref name="db"/> and saves it with whatever else is pending there.</summary>
    public async Task<AuthResponse> StartSessionAsync(CovibeDb db, Team team, User user, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var session = new AuthSession
        {
            Id = Tokens.NewId(),
            UserId = user.Id,
            CreatedAt = now,
            ExpiresAt = now.AddDays(options.Value.RefreshTokenDays),
        };
        db.Sessions.Add(session);
        var (refresh, refreshExpires) = AddRefreshToken(db, session.Id, now);
        await db.SaveChangesAsync(cancellationToken);
        AuthLog.SessionStarted(logger, user.Id, team.Id, session.Id);
        return Respond(team, user, session.Id, refresh, refreshExpires);
    }

    public async Task<(AuthResponse? Response, string? Failure)> RefreshAsync(string refreshToken, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        var hash = Tokens.Hash(refreshToken);
        var stored = await db.RefreshTokens.AsNoTracking().SingleOrDefaultAsync(t => t.TokenHash == hash, cancellationToken);
        if (stored is null)
        {
            return (null, "The refresh token is not known. Log in again with POST /api/auth/login.");
        }
        // Claim the token atomically: of two concurrent uses only one can win.
        var claimed = await db.RefreshTokens
            .Where(t => t.Id == stored.Id && t.UsedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.UsedAt, now), cancellationToken);
        if (claimed == 0)
        {
            await RevokeSessionsAsync(db, [stored.SessionId], "refresh token reused", cancellationToken);
            AuthLog.RefreshReuse(logger, stored.SessionId);
            return (null, "This refresh token was already used, so it may have leaked: the login it belongs to was signed out. Log in again with POST /api/auth/login.");
        }
        var session = await db.Sessions.Include(s => s.User).SingleAsync(s => s.Id == stored.SessionId, cancellationToken);
        if (session.RevokedAt is not null || session.ExpiresAt <= now || stored.ExpiresAt <= now || session.User!.RemovedAt is not null)
        {
            return (null, "This login has ended (signed out, expired, or removed from the team). Log in again with POST /api/auth/login.");
        }
        var team = await db.Teams.SingleAsync(t => t.Id == session.User.TeamId, cancellationToken);
        var (refresh, refreshExpires) = AddRefreshToken(db, session.Id, now);
        await db.SaveChangesAsync(cancellationToken);
        return (Respond(team, session.User, session.Id, refresh, refreshExpires), null);
    }

    public async Task<bool> IsSessionActiveAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        return await db.Sessions.AnyAsync(
            s => s.Id == sessionId && s.RevokedAt == null && s.ExpiresAt > now && s.User!.RemovedAt == null,
            cancellationToken);
    }

    public async Task LogoutAsync(Caller caller, bool allDevices, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await LogoutAsync(db, caller.UserId, caller.SessionId, allDevices, cancellationToken);
    }

    /// <summary>Signs out the session a refresh token belongs to; an unknown token is ignored.</summary>
    public async Task LogoutAsync(string refreshToken, bool allDevices, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var hash = Tokens.Hash(refreshToken);
        var session = await db.RefreshTokens
            .Where(t => t.TokenHash == hash)
            .Join(db.Sessions, t => t.SessionId, s => s.Id, (t, s) => new { s.Id, s.UserId })
            .SingleOrDefaultAsync(cancellationToken);
        if (session is not null)
        {
            await LogoutAsync(db, session.UserId, session.Id, allDevices, cancellationToken);
        }
    }

    private async Task LogoutAsync(CovibeDb db, string userId, string sessionId, bool allDevices, CancellationToken cancellationToken)
    {
        var sessionIds = allDevices
            ? await db.Sessions.Where(s => s.UserId == userId && s.RevokedAt == null).Select(s => s.Id).ToListAsync(cancellationToken)
            : [sessionId];
        await RevokeSessionsAsync(db, sessionIds, "logout", cancellationToken);
    }

    /// <summary>Ends every login of a member, e.g. when the owner removes them.</summary>
    public async Task RevokeUserAsync(CovibeDb db, string userId, string reason, CancellationToken cancellationToken)
    {
        var sessionIds = await db.Sessions.Where(s => s.UserId == userId && s.RevokedAt == null).Select(s => s.Id).ToListAsync(cancellationToken);
        await RevokeSessionsAsync(db, sessionIds, reason, cancellationToken);
    }

    private async Task RevokeSessionsAsync(CovibeDb db, IReadOnlyCollection<string> sessionIds, string reason, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await db.Sessions
            .Where(s => sessionIds.Contains(s.Id) && s.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.RevokedAt, now).SetProperty(x => x.RevokedReason, reason), cancellationToken);
        foreach (var id in sessionIds)
        {
            AuthLog.SessionRevoked(logger, id, reason);
        }
        events.Revoke(sessionIds);
    }

    private (string Token, DateTime ExpiresAt) AddRefreshToken(CovibeDb db, string sessionId, DateTime now)
    {
        var token = Tokens.NewToken();
        var expires = now.AddDays(options.Value.RefreshTokenDays);
        db.RefreshTokens.Add(new RefreshToken
        {
            Id = Tokens.NewId(),
            SessionId = sessionId,
            TokenHash = Tokens.Hash(token),
            CreatedAt = now,
            ExpiresAt = expires,
        });
        return (token, expires);
    }

    private AuthResponse Respond(Team team, User user, string sessionId, string refresh, DateTime refreshExpires)
    {
        var (access, accessExpires) = tokens.CreateAccessToken(user.Id, team.Id, user.Name, sessionId);
        return new AuthResponse(team.ToDto(), user.ToDto(), access, accessExpires, refresh, refreshExpires);
    }
}
