using Covibe.Execution;
using Covibe.Server.Features.Git;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Previews;

/// <summary>The live versions' care: the replaced one drained and stopped, old deploys pruned, the live one's health watched, branches looked at.</summary>
public sealed partial class PreviewDeployer
{
    /// <summary>Lets the replaced version finish what it serves, stops it, and removes deploys beyond <c>KeepDeploys</c>.</summary>
    private async Task RetireAsync(PreviewDeploy old)
    {
        try
        {
            await jobs.StopAsync(old, TimeSpan.FromSeconds(options.Value.DrainSeconds), _stopping);
            PreviewJobs.DeleteFiles(Path.Combine(Root, old.TeamId, old.Id));
            await jobs.RemoveImageAsync(old);
            await PruneAsync(old.TeamId, _stopping);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            PreviewsLog.WorkerFailed(logger, old.TeamId, e);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task PruneAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var old = await db.PreviewDeploys.Where(d => d.TeamId == teamId)
            .OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).Skip(options.Value.KeepDeploys + 1).ToListAsync(cancellationToken);
        foreach (var deploy in old.Where(d => !PreviewStatuses.InProgress(d.Status) && d.Status != PreviewStatuses.Live))
        {
            if (deploy.RuntimeDirectory is { } runtime && Path.GetFileName(runtime) == PreviewJobs.RuntimeName(deploy))
            {
                PreviewJobs.DeleteFiles(runtime);
            }
            db.PreviewDeploys.Remove(deploy);
        }
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>
    /// Watches the live versions: one that stopped on its own, or stopped answering its health check (seed 003's
    /// interval, timeout and retries), is deployed again from its commit; the Showcase says why meanwhile.
    /// </summary>
    private async Task WatchLiveAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var live = await db.PreviewDeploys.Where(d => d.Status == PreviewStatuses.Live).ToListAsync(cancellationToken);
        // Health-check state of versions no longer live goes with them.
        foreach (var gone in _checks.Keys.Except(live.Select(d => d.Id)))
        {
            _checks.TryRemove(gone, out _);
        }
        var changed = new List<string>();
        foreach (var deploy in live)
        {
            if (await ProblemAsync(deploy, cancellationToken) is not { } problem)
            {
                continue;
            }
            PreviewsLog.LiveStopped(logger, deploy.TeamId, deploy.Id);
            _checks.TryRemove(deploy.Id, out _);
            await jobs.StopAsync(deploy, TimeSpan.Zero, cancellationToken);
            var now = time.GetUtcNow().UtcDateTime;
            Finish(deploy, PreviewStatuses.Failed, problem + " It is being deployed again.", now);
            var preview = await db.Previews.SingleOrDefaultAsync(p => p.TeamId == deploy.TeamId, cancellationToken);
            if (preview is not null && preview.LiveDeployId == deploy.Id)
            {
                preview.LiveDeployId = null;
                proxy.Switched(deploy.TeamId);
                // Deployed again, unless a newer commit is already queued or under way: the newest queued deploy wins, and
                // this one, queued after it, would replace it with the old commit (seen when a node took over the deploys
                // while a push was building: the push was replaced and the preview stayed on the old code).
                if (!await db.PreviewDeploys.AnyAsync(d => d.TeamId == deploy.TeamId
                    && (d.Status == PreviewStatuses.Queued || d.Status == PreviewStatuses.Building || d.Status == PreviewStatuses.Starting), cancellationToken))
                {
                    PreviewService.Queue(db, deploy.TeamId, deploy.Commit, "restart", now);
                }
                changed.Add(deploy.TeamId);
            }
        }
        await db.SaveChangesAsync(cancellationToken);
        foreach (var teamId in changed)
        {
            Wake(teamId);
            await events.ChangedAsync(teamId, cancellationToken);
        }
    }

    /// <summary>Why the live <paramref name="deploy"/> no longer serves, or null while it does.</summary>
    private async Task<string?> ProblemAsync(PreviewDeploy deploy, CancellationToken cancellationToken)
    {
        if (deploy.Process is not { } process)
        {
            return null;
        }
        if ((await backends.Get(process.Backend).ProbeAsync(process, cancellationToken)).State is AgentRunState.Exited or AgentRunState.Gone)
        {
            return "The live version stopped on its own.";
        }
        var now = time.GetUtcNow();
        var check = _checks.GetOrAdd(deploy.Id, _ => (now, 0));
        if (now < check.Next || deploy.Port is not { } port)
        {
            return null;
        }
        var settings = healthChecks.Value;
        var path = deploy.HealthPath ?? "/";
        var failures = await jobs.AnswersAsync(port, path, TimeSpan.FromSeconds(settings.HealthCheckTimeoutSeconds), cancellationToken) ? 0 : check.Failures + 1;
        _checks[deploy.Id] = (now.AddSeconds(settings.HealthCheckIntervalSeconds), failures);
        return failures >= settings.HealthCheckRetries
            ? $"The live version stopped answering its health check (GET {path}, {failures} times in a row)."
            : null;
    }

    /// <summary>Seed 001's "GitHub downtime: preview updates queue, retry on recovery": the server looks at each branch itself and deploys a head it has not seen.</summary>
    private async Task CheckBranchesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        foreach (var preview in await db.Previews.ToListAsync(cancellationToken))
        {
            string? head = null;
            try
            {
                head = await git.HeadAsync(await service.RemoteAsync(preview, cancellationToken), preview.Branch, cancellationToken);
                preview.CheckError = head is null ? $"The repository has no branch '{preview.Branch}'." : null;
            }
            catch (GitMirrorException e)
            {
                preview.CheckError = e.Message;
                PreviewsLog.CheckFailed(logger, preview.TeamId, e.Message);
            }
            var now = time.GetUtcNow().UtcDateTime;
            preview.CheckedAt = now;
            var newest = await db.PreviewDeploys.Where(d => d.TeamId == preview.TeamId).OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id)
                .Select(d => d.Commit).FirstOrDefaultAsync(cancellationToken);
            var queue = head is not null && head != newest;
            if (queue)
            {
                PreviewService.Queue(db, preview.TeamId, head!, "check", now);
            }
            await db.SaveChangesAsync(cancellationToken);
            if (queue)
            {
                Wake(preview.TeamId);
                await events.ChangedAsync(preview.TeamId, cancellationToken);
            }
        }
    }
}
