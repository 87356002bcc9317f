using Covibe.Server.Features.Git;
using Covibe.Server.Features.Repositories;
using System.Text;
using System.Text.RegularExpressions;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Hosting;
using Covibe.Server.Http;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// The team's preview as its members see and change it: connecting the repository, the webhook secret,
/// queueing commits (a push, the branch check, a redeploy), and its state for REST and the hub.
/// Deploys themselves are <see cref="PreviewDeployer"/>'s.
/// </summary>
public sealed partial class PreviewService(
    IDbContextFactory<CovibeDb> dbs, SecretBox secrets, GitMirror git, RepositoryAccess repositories, PreviewUrls urls, PreviewEvents events, IOptions<PreviewsOptions> options,
    TimeProvider time, ILogger<PreviewService> logger)
{
    public const string WebhookPurpose = "preview-webhook";

    /// <summary>Raised when a commit is queued, so the deployer wakes for the team.</summary>
    public event Action<string>? Queued;

    /// <summary>The preview's repository as git reaches it: with the team's credential when it is the team's repository.</summary>
    public Task<GitRemote> RemoteAsync(Preview preview, CancellationToken cancellationToken) =>
        repositories.RemoteAsync(preview.TeamId, preview.RepositoryUrl, options.Value.AllowLocalRepositories, cancellationToken);

    /// <summary>Connects (or reconnects) the team's repository; checks that the branch exists; queues its head. Answers the new webhook secret.</summary>
    public async Task<(Preview Preview, string Secret)> ConnectAsync(Caller owner, string? repositoryUrl, string? branch, CancellationToken cancellationToken)
    {
        var url = repositoryUrl?.Trim() ?? "";
        // Without an address: the team's repository, on its base branch unless one is named.
        // The team's repository, read once: the address to follow when none is given, and its credential.
        var teamRepository = await repositories.ConnectedAsync(owner.TeamId, cancellationToken);
        if (url.Length == 0 && teamRepository is not null)
        {
            url = teamRepository.Url!;
            branch ??= teamRepository.Branch;
        }
        if (RepositoryAccess.Problem(teamRepository, url, options.Value.AllowLocalRepositories, "The preview") is { } problem)
        {
            throw RequestRefusedException.Field("repositoryUrl", problem);
        }
        var branchName = string.IsNullOrWhiteSpace(branch) ? "main" : branch.Trim();
        if (!BranchName().IsMatch(branchName) || branchName.Contains("..", StringComparison.Ordinal) || branchName.EndsWith(".lock", StringComparison.Ordinal))
        {
            throw RequestRefusedException.Field("branch", $"'{branchName}' is not a branch name.");
        }
        string? head;
        try
        {
            head = await git.HeadAsync(await repositories.RemoteAsync(teamRepository, url, options.Value.AllowLocalRepositories, cancellationToken), branchName, cancellationToken);
        }
        catch (GitMirrorException e)
        {
            throw RequestRefusedException.Field("repositoryUrl", $"The repository could not be read: {e.Message}");
        }
        if (head is null)
        {
            throw RequestRefusedException.Field("branch", $"The repository has no branch '{branchName}'.");
        }

        var secret = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var preview = await db.Previews.SingleOrDefaultAsync(p => p.TeamId == owner.TeamId, cancellationToken);
        if (preview is null)
        {
            preview = new Preview
            {
                TeamId = owner.TeamId, RepositoryUrl = url, Branch = branchName, CreatedBy = owner.UserId, CreatedAt = now,
                WebhookSecret = secrets.Seal(Encoding.UTF8.GetBytes(secret), owner.TeamId, WebhookPurpose),
            };
            db.Previews.Add(preview);
        }
        else
        {
            preview.RepositoryUrl = url;
            preview.Branch = branchName;
            preview.CreatedBy = owner.UserId;
            preview.WebhookSecret = secrets.Seal(Encoding.UTF8.GetBytes(secret), owner.TeamId, WebhookPurpose);
        }
        preview.UpdatedAt = now;
        preview.CheckedAt = now;
        preview.CheckError = null;
        Queue(db, owner.TeamId, head, "connect", now);
        await db.SaveChangesAsync(cancellationToken);
        PreviewsLog.Connected(logger, owner.TeamId, owner.UserId);
        Queued?.Invoke(owner.TeamId);
        await events.ChangedAsync(owner.TeamId, cancellationToken);
        return (preview, secret);
    }

    /// <summary>A new webhook secret (the old one stops working at once).</summary>
    public async Task<(Preview Preview, string Secret)?> RotateAsync(Caller owner, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var preview = await db.Previews.SingleOrDefaultAsync(p => p.TeamId == owner.TeamId, cancellationToken);
        if (preview is null)
        {
            return null;
        }
        var secret = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        preview.WebhookSecret = secrets.Seal(Encoding.UTF8.GetBytes(secret), owner.TeamId, WebhookPurpose);
        preview.UpdatedAt = time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        PreviewsLog.SecretRotated(logger, owner.TeamId, owner.UserId);
        return (preview, secret);
    }

    /// <summary>The team's webhook secret, for checking a delivery's signature.</summary>
    public byte[] WebhookSecret(Preview preview) => secrets.Open(preview.WebhookSecret, preview.TeamId, WebhookPurpose);

    /// <summary>Queues the branch's head now (an owner's redeploy), even if it is live or failed before.</summary>
    public async Task<bool> RedeployAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var preview = await db.Previews.AsNoTracking().SingleOrDefaultAsync(p => p.TeamId == teamId, cancellationToken);
        if (preview is null)
        {
            return false;
        }
        string? head;
        try
        {
            head = await git.HeadAsync(await RemoteAsync(preview, cancellationToken), preview.Branch, cancellationToken);
        }
        catch (GitMirrorException e)
        {
            throw RepositoryUnreadable($"The repository could not be read: {e.Message}");
        }
        if (head is null)
        {
            throw RepositoryUnreadable($"The repository has no branch '{preview.Branch}' any more.");
        }
        await QueueAsync(teamId, head, "redeploy", cancellationToken);
        return true;
    }

    /// <summary>
    /// Covibe itself pushed <paramref name="commit"/> to <paramref name="branch"/> of <paramref name="repositoryUrl"/> (a merge):
    /// when the team's preview follows that branch, it is queued at once rather than when the forge's webhook comes (which
    /// then finds it queued or live already). Answers whether it was queued.
    /// </summary>
    public async Task<bool> PushedAsync(string teamId, string repositoryUrl, string branch, string commit, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var preview = await db.Previews.AsNoTracking().SingleOrDefaultAsync(p => p.TeamId == teamId, cancellationToken);
        if (preview is null || preview.Branch != branch || GitHubPush.Normalize(preview.RepositoryUrl) != GitHubPush.Normalize(repositoryUrl))
        {
            return false;
        }
        await QueueAsync(teamId, commit, "merge", cancellationToken);
        return true;
    }

    /// <summary>Whether <paramref name="commit"/> is already queued, being deployed or live for the team (a webhook for it changes nothing).</summary>
    internal static Task<bool> DeployingOrLiveAsync(CovibeDb db, string teamId, string commit, CancellationToken cancellationToken) =>
        db.PreviewDeploys.AnyAsync(d => d.TeamId == teamId && d.Commit == commit && (d.Status == PreviewStatuses.Queued || d.Status == PreviewStatuses.Building
            || d.Status == PreviewStatuses.Starting || d.Status == PreviewStatuses.Live), cancellationToken);

    /// <summary>Queues <paramref name="commit"/> for the team and wakes the deployer.</summary>
    public async Task QueueAsync(string teamId, string commit, string trigger, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        Queue(db, teamId, commit, trigger, time.GetUtcNow().UtcDateTime);
        await db.SaveChangesAsync(cancellationToken);
        Queued?.Invoke(teamId);
        await events.ChangedAsync(teamId, cancellationToken);
    }

    /// <summary>Adds a queued deploy to <paramref name="db"/> (saved by the caller, with whatever else belongs to the same change).</summary>
    internal static PreviewDeploy Queue(CovibeDb db, string teamId, string commit, string trigger, DateTime now) =>
        db.PreviewDeploys.Add(new PreviewDeploy
        {
            Id = Tokens.NewId(), TeamId = teamId, Commit = commit, Trigger = trigger, Status = PreviewStatuses.Queued, CreatedAt = now,
        }).Entity;

    /// <summary>Signals that the deployer has something for the team (after <see cref="Queue"/> and a save).</summary>
    internal void Wake(string teamId) => Queued?.Invoke(teamId);

    public async Task<bool> DisconnectAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var preview = await db.Previews.SingleOrDefaultAsync(p => p.TeamId == teamId, cancellationToken);
        if (preview is null)
        {
            return false;
        }
        db.Previews.Remove(preview);
        await db.SaveChangesAsync(cancellationToken);
        Queued?.Invoke(teamId); // the deployer stops what runs
        return true;
    }

    public async Task<PreviewDto?> GetAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await DtoAsync(db, teamId, urls, cancellationToken);
    }

    public async Task<PreviewDeployDto[]> DeploysAsync(string teamId, int limit, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var deploys = await db.PreviewDeploys.AsNoTracking().Where(d => d.TeamId == teamId)
            .OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).Take(limit).ToListAsync(cancellationToken);
        return [.. deploys.Select(ToDto)];
    }

    internal static async Task<PreviewDto?> DtoAsync(CovibeDb db, string teamId, PreviewUrls urls, CancellationToken cancellationToken)
    {
        var preview = await db.Previews.AsNoTracking().SingleOrDefaultAsync(p => p.TeamId == teamId, cancellationToken);
        if (preview is null)
        {
            return null;
        }
        var recent = await db.PreviewDeploys.AsNoTracking().Where(d => d.TeamId == teamId)
            .OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).Take(20).ToListAsync(cancellationToken);
        var live = preview.LiveDeployId is { } liveId
            ? recent.FirstOrDefault(d => d.Id == liveId) ?? await db.PreviewDeploys.AsNoTracking().SingleOrDefaultAsync(d => d.Id == liveId, cancellationToken)
            : null;
        var current = recent.FirstOrDefault(d => d.Status is PreviewStatuses.Building or PreviewStatuses.Starting)
            ?? recent.FirstOrDefault(d => d.Status == PreviewStatuses.Queued); // the newest: the one the deployer takes next
        var latest = recent.FirstOrDefault(d => d.Status is not (PreviewStatuses.Skipped or PreviewStatuses.Queued));
        var failedSinceLive = latest is { Status: PreviewStatuses.Failed } && (live is null || latest.CreatedAt >= live.CreatedAt) ? latest : null;
        var status = current?.Status ?? (live is not null ? PreviewStatuses.Live : failedSinceLive is not null ? PreviewStatuses.Failed : PreviewStatuses.Idle);
        return new PreviewDto(
            preview.RepositoryUrl, preview.Branch, WebhookUrl(urls, teamId), status,
            live is null ? null : urls.Origin(teamId) + "/", live?.Commit, live?.FinishedAt, failedSinceLive?.Error,
            current is null ? null : ToDto(current), latest is null ? null : ToDto(latest), preview.CheckedAt, preview.CheckError);
    }

    /// <summary>Where GitHub sends pushes: seed 001's route, with the team named so the right secret checks it.</summary>
    internal static string WebhookUrl(PreviewUrls urls, string teamId) => $"{urls.ServerOrigin}/api/webhook/push?team={teamId}";

    internal static PreviewDeployDto ToDto(PreviewDeploy d) =>
        new(d.Id, d.Commit, d.Status, d.Trigger, d.ProjectType, d.CreatedAt, d.StartedAt, d.FinishedAt, d.Error, PreviewLogs.Length(d));

    /// <summary>
    /// A deploy's log from byte <paramref name="from"/>, at most 1 MiB, with the deploy's status; complete once the deploy
    /// is over (failed, replaced...) and the page reaches the end. Refused with 404 for a deploy not of the team's preview.
    /// </summary>
    public async Task<DeployLogPage> ReadLogAsync(string teamId, string deployId, long from, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var deploy = await db.PreviewDeploys.AsNoTracking().SingleOrDefaultAsync(d => d.Id == deployId && d.TeamId == teamId, cancellationToken)
            ?? throw RequestRefusedException.NotFound("Deploy", $"Your team's preview has no deploy '{deployId}'. List them with GET /api/preview/deploys.");
        // Sized by what is there (a long poll asks every 200 ms; most answers are empty), at most 1 MiB.
        var length = PreviewLogs.Length(deploy);
        var buffer = new byte[(int)Math.Clamp(length - from, 0, 1024 * 1024)];
        var n = buffer.Length > 0 && PreviewLogs.PathOf(deploy) is { } path ? await Execution.UntrustedFiles.ReadAsync(path, from, buffer, cancellationToken) : 0;
        var over = !PreviewStatuses.InProgress(deploy.Status) && deploy.Status != PreviewStatuses.Live;
        return new DeployLogPage(new LogPage(from, buffer[..n], over && from + n >= length), deploy.Status, over);
    }

    private static RequestRefusedException RepositoryUnreadable(string detail) =>
        new(Refusal.Conflict, "repository-unreadable", "The repository could not be read", detail);

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")]
    private static partial Regex BranchName();
}
