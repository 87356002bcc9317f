using Covibe.Server.Features.Git;
using System.Collections.Concurrent;
using Covibe.Execution;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Covibe.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Previews;

/// <summary>A deploy that cannot go live; the message is shown to the team with the deploy.</summary>
public sealed class PreviewDeployException(string message) : Exception(message);

/// <summary>
/// Builds and serves each team's preview. One worker per team takes the newest queued commit (older queued ones
/// are skipped), fetches it into the team's mirror, exports its files, and has <see cref="PreviewJobs"/> run it.
/// The new version goes live only after it answers its health check; the old one keeps
/// serving until then, drains, and stops. A version that fails leaves the live one alone. Jobs outlive the server
/// like agents do: a restart keeps the live version and redoes a deploy it interrupted.
/// </summary>
public sealed class PreviewDeployer(
    IDbContextFactory<CovibeDb> dbs, PreviewService service, GitMirror git, PreviewJobs jobs, PreviewEvents events, PreviewUrls urls,
    ExecutionBackends backends, PreviewProxy proxy, PreviewConnections connections, IOptions<PreviewsOptions> options, IOptions<ServerOptions> server,
    IOptions<ContainersOptions> healthChecks, TimeProvider time, ILogger<PreviewDeployer> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<string, TeamWorker> _workers = new();
    private readonly ConcurrentDictionary<string, (DateTimeOffset Next, int Failures)> _checks = new();
    private CancellationToken _stopping;

    private string Root => Path.Combine(server.Value.DataDirectory, "previews");

    /// <summary>Wakes the team's worker (a commit was queued, or the preview was removed).</summary>
    public void Wake(string teamId)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }
        var worker = _workers.GetOrAdd(teamId, _ => new TeamWorker());
        lock (worker)
        {
            worker.Loop ??= Task.Run(() => RunTeamAsync(teamId, worker), CancellationToken.None);
        }
        worker.Signal.Release();
    }

    /// <summary>Stops the deploy in progress (its build really stops) and drops the queued ones; false when nothing was under way.</summary>
    public async Task<bool> CancelAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var queued = await db.PreviewDeploys.Where(d => d.TeamId == teamId && d.Status == PreviewStatuses.Queued).ToListAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var deploy in queued)
        {
            Finish(deploy, PreviewStatuses.Cancelled, "Cancelled by the team's owner.", now);
        }
        await db.SaveChangesAsync(cancellationToken);
        var running = _workers.TryGetValue(teamId, out var worker) && worker.Current is { IsCancellationRequested: false } current;
        if (running)
        {
            await worker!.Current!.CancelAsync();
        }
        if (queued.Count > 0 || running)
        {
            await events.ChangedAsync(teamId, cancellationToken);
        }
        return queued.Count > 0 || running;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        service.Queued += Wake;
        try
        {
            await RecoverAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            PreviewsLog.WorkerFailed(logger, "*", e);
        }
        var nextCheck = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await WatchLiveAsync(stoppingToken);
                if (options.Value.CheckSeconds > 0 && time.GetUtcNow() >= nextCheck)
                {
                    nextCheck = time.GetUtcNow().AddSeconds(options.Value.CheckSeconds);
                    await CheckBranchesAsync(stoppingToken);
                }
                await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(options.Value.CheckSeconds, 1, 5)), time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                PreviewsLog.WorkerFailed(logger, "*", e);
                await Task.Delay(TimeSpan.FromSeconds(5), time, stoppingToken);
            }
        }
    }

    /// <summary>After a restart: deploys that were under way are done again (their jobs stopped); every team's worker starts.</summary>
    private async Task RecoverAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var interrupted = await db.PreviewDeploys.Where(d => d.Status == PreviewStatuses.Building || d.Status == PreviewStatuses.Starting).ToListAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var deploy in interrupted)
        {
            await jobs.StopAsync(deploy, TimeSpan.Zero, cancellationToken);
            Finish(deploy, PreviewStatuses.Cancelled, "Interrupted by a server restart; deployed again.", now);
            var newer = await db.PreviewDeploys.AnyAsync(d => d.TeamId == deploy.TeamId && d.Status == PreviewStatuses.Queued && d.CreatedAt > deploy.CreatedAt, cancellationToken);
            if (!newer)
            {
                PreviewService.Queue(db, deploy.TeamId, deploy.Commit, deploy.Trigger, now);
            }
        }
        await db.SaveChangesAsync(cancellationToken);
        foreach (var live in await db.PreviewDeploys.Where(d => d.Status == PreviewStatuses.Live && d.Port != null && d.RuntimeDirectory != null).ToListAsync(cancellationToken))
        {
            if (File.Exists(PreviewConnections.SocketOf(live.RuntimeDirectory!)))
            {
                connections.Register(live.Port!.Value, PreviewConnections.SocketOf(live.RuntimeDirectory!));
            }
        }
        foreach (var teamId in await db.Previews.Select(p => p.TeamId).ToListAsync(cancellationToken))
        {
            Wake(teamId);
        }
    }

    private async Task RunTeamAsync(string teamId, TeamWorker worker)
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await worker.Signal.WaitAsync(_stopping);
                while (await NextAsync(teamId, _stopping) is { } next)
                {
                    using var current = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
                    worker.Current = current;
                    try
                    {
                        await DeployAsync(next.Preview, next.Deploy, current.Token);
                    }
                    finally
                    {
                        worker.Current = null;
                    }
                }
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                PreviewsLog.WorkerFailed(logger, teamId, e);
                await Task.Delay(TimeSpan.FromSeconds(1), time, CancellationToken.None);
            }
        }
    }

    /// <summary>The newest queued deploy, now building; older queued ones are skipped. Null when there is none, or the preview is gone (then nothing of it keeps running).</summary>
    private async Task<(Preview Preview, PreviewDeploy Deploy)?> NextAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var preview = await db.Previews.AsNoTracking().SingleOrDefaultAsync(p => p.TeamId == teamId, cancellationToken);
        var queued = await db.PreviewDeploys.Where(d => d.TeamId == teamId && d.Status == PreviewStatuses.Queued)
            .OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).ToListAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        if (preview is null)
        {
            foreach (var deploy in await db.PreviewDeploys.Where(d => d.TeamId == teamId && d.Status == PreviewStatuses.Live).ToListAsync(cancellationToken))
            {
                await jobs.StopAsync(deploy, TimeSpan.Zero, cancellationToken);
                Finish(deploy, PreviewStatuses.Replaced, "The preview was disconnected.", now);
            }
            foreach (var deploy in queued)
            {
                Finish(deploy, PreviewStatuses.Cancelled, "The preview was disconnected.", now);
            }
            await db.SaveChangesAsync(cancellationToken);
            return null;
        }
        if (queued.Count == 0)
        {
            return null;
        }
        var next = queued[0];
        foreach (var older in queued.Skip(1))
        {
            Finish(older, PreviewStatuses.Skipped, $"A newer commit ({Short(next.Commit)}) came first.", now);
        }
        next.Status = PreviewStatuses.Building;
        next.StartedAt = now;
        await db.SaveChangesAsync(cancellationToken);
        PreviewsLog.DeployStatus(logger, next.Id, teamId, next.Status, next.Commit);
        await events.ChangedAsync(teamId, cancellationToken);
        return (preview, next);
    }

    private async Task DeployAsync(Preview preview, PreviewDeploy deploy, CancellationToken cancellationToken)
    {
        var teamDirectory = Path.Combine(Root, preview.TeamId);
        var files = Path.Combine(teamDirectory, deploy.Id);
        var live = false;
        try
        {
            ServerOptions.EnsureDirectory(Root);
            ServerOptions.EnsureDirectory(teamDirectory);
            var mirror = Path.Combine(teamDirectory, "repo.git");
            var buildTimeout = TimeSpan.FromSeconds(options.Value.BuildTimeoutSeconds);
            await git.FetchAsync(mirror, preview.RepositoryUrl, preview.Branch, options.Value.AllowLocalRepositories, buildTimeout, cancellationToken);
            if (!await git.HasCommitAsync(mirror, deploy.Commit, cancellationToken))
            {
                throw new PreviewDeployException($"Commit {Short(deploy.Commit)} is not on the branch '{preview.Branch}' (was it force-pushed away?).");
            }
            await git.ExportAsync(mirror, deploy.Commit, files, cancellationToken);
            var job = await jobs.StartAsync(preview.TeamId, deploy, files, cancellationToken);
            await UpdateAsync(deploy.Id, d =>
            {
                d.ProjectType = job.Plan.Type;
                d.Port = job.Port;
                d.HealthPath = job.Plan.HealthPath;
                d.Backend = job.Process.Backend;
                d.Target = job.Process.Target;
                d.RuntimeDirectory = job.Process.RuntimeDirectory;
                d.Pid = job.Process.Pid;
                d.PidStartTime = job.Process.StartTime;
            }, cancellationToken);
            await events.ChangedAsync(preview.TeamId, cancellationToken);

            await jobs.WaitHealthyAsync(deploy, job, async () =>
            {
                await UpdateAsync(deploy.Id, d => d.Status = PreviewStatuses.Starting, cancellationToken);
                PreviewsLog.DeployStatus(logger, deploy.Id, deploy.TeamId, PreviewStatuses.Starting, deploy.Commit);
                await events.ChangedAsync(deploy.TeamId, cancellationToken);
            }, cancellationToken);
            live = await GoLiveAsync(preview.TeamId, deploy.Id, cancellationToken);
            if (!live)
            {
                throw new PreviewDeployException("The preview was disconnected while this version was starting.");
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return; // the next start redoes it
        }
        catch (OperationCanceledException)
        {
            await FailAsync(deploy.Id, PreviewStatuses.Cancelled, "Cancelled by the team's owner.");
        }
        catch (Exception e) when (e is GitMirrorException or ProjectFileException or PreviewDeployException)
        {
            await FailAsync(deploy.Id, PreviewStatuses.Failed, e.Message);
        }
        catch (Exception e)
        {
            PreviewsLog.WorkerFailed(logger, preview.TeamId, e);
            await FailAsync(deploy.Id, PreviewStatuses.Failed, "The deploy failed on the server (see its log); try a redeploy.");
        }
        finally
        {
            if (!live && !_stopping.IsCancellationRequested)
            {
                PreviewJobs.DeleteFiles(files);
            }
        }
    }

    /// <summary>Switches the team's traffic to the deploy; the version it replaces drains and stops. False when the preview is gone.</summary>
    private async Task<bool> GoLiveAsync(string teamId, string deployId, CancellationToken cancellationToken)
    {
        PreviewDeploy? old;
        PreviewDeploy deploy;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            var preview = await db.Previews.SingleOrDefaultAsync(p => p.TeamId == teamId, cancellationToken);
            if (preview is null)
            {
                return false;
            }
            deploy = await db.PreviewDeploys.SingleAsync(d => d.Id == deployId, cancellationToken);
            old = preview.LiveDeployId is { } oldId ? await db.PreviewDeploys.SingleOrDefaultAsync(d => d.Id == oldId, cancellationToken) : null;
            var now = time.GetUtcNow().UtcDateTime;
            deploy.Status = PreviewStatuses.Live;
            deploy.FinishedAt = now;
            preview.LiveDeployId = deploy.Id;
            if (old is not null && old.Id != deploy.Id)
            {
                old.Status = PreviewStatuses.Replaced;
            }
            await db.SaveChangesAsync(cancellationToken);
        }
        PreviewsLog.DeployStatus(logger, deploy.Id, teamId, PreviewStatuses.Live, deploy.Commit);
        proxy.Switched(teamId);
        events.Updated(teamId, urls.Origin(teamId) + "/", deploy.Commit);
        await events.ChangedAsync(teamId, cancellationToken);
        if (old is not null && old.Id != deploy.Id)
        {
            _ = RetireAsync(old);
        }
        return true;
    }

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
                PreviewService.Queue(db, deploy.TeamId, deploy.Commit, "restart", now);
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
                head = await git.HeadAsync(preview.RepositoryUrl, preview.Branch, options.Value.AllowLocalRepositories, cancellationToken);
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

    private async Task FailAsync(string deployId, string status, string error)
    {
        PreviewDeploy? deploy = null;
        await UpdateAsync(deployId, d =>
        {
            Finish(d, status, error, time.GetUtcNow().UtcDateTime);
            deploy = d;
        }, CancellationToken.None);
        if (deploy is null)
        {
            return;
        }
        PreviewsLog.DeployFailed(logger, deploy.Id, deploy.TeamId, error);
        await jobs.StopAsync(deploy, TimeSpan.Zero, CancellationToken.None);
        await jobs.RemoveImageAsync(deploy);
        await events.ChangedAsync(deploy.TeamId, CancellationToken.None);
    }

    private async Task UpdateAsync(string deployId, Action<PreviewDeploy> change, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await db.PreviewDeploys.SingleOrDefaultAsync(d => d.Id == deployId, cancellationToken) is { } deploy)
        {
            change(deploy);
            await db.SaveChangesAsync(cancellationToken);
        }
    }

    private static void Finish(PreviewDeploy deploy, string status, string? error, DateTime now)
    {
        deploy.Status = status;
        deploy.Error = error;
        deploy.FinishedAt = now;
    }

    internal static string Short(string commit) => commit.Length > 7 ? commit[..7] : commit;

    /// <summary>Stops the workers too, and waits for them (a fetch under way is stopped): nothing of theirs runs on after the server.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        var loops = _workers.Values.Select(w => w.Loop).OfType<Task>().ToArray();
        await Task.WhenAny(Task.WhenAll(loops), Task.Delay(TimeSpan.FromSeconds(10), time, cancellationToken));
    }

    private sealed class TeamWorker
    {
        public SemaphoreSlim Signal { get; } = new(0);
        public Task? Loop { get; set; }
        public CancellationTokenSource? Current { get; set; }
    }
}
