using Covibe.Server.Features.Containers;
using Covibe.Server.Features.Cluster;
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
/// With several nodes, one deploys at a time (the lease <see cref="LeaseName"/>): the others queue deploys in the
/// database and signal it (<see cref="IClusterSignals"/>); when it stops or dies, the next holder takes over what it
/// left (as after a restart).
/// </summary>
public sealed partial class PreviewDeployer(
    IDbContextFactory<CovibeDb> dbs, PreviewService service, GitMirror git, PreviewJobs jobs, PreviewEvents events, PreviewUrls urls,
    ExecutionBackends backends, PreviewProxy proxy, PreviewConnections connections, Leases leases, ThisNode node, IClusterSignals signals,
    IOptions<PreviewsOptions> options, IOptions<ServerOptions> server,
    IOptions<ContainersOptions> healthChecks, PreviewMetrics metrics, TimeProvider time, ILogger<PreviewDeployer> logger) : BackgroundService
{
    public const string LeaseName = "preview-deployer";
    private const string QueuedSignal = "preview-queued";
    private const string CancelSignal = "preview-cancel";
    private const string SwitchedSignal = "preview-switched";

    /// <summary>How long the deploying node's lease lasts unrenewed (it renews it every pass, every 1-5 s).</summary>
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, TeamWorker> _workers = new();
    private readonly ConcurrentDictionary<string, (DateTimeOffset Next, int Failures)> _checks = new();
    private CancellationToken _stopping;
    private volatile bool _deploying;

    private string Root => Path.Combine(server.Value.DataDirectory, "previews");

    /// <summary>Wakes the team's worker (a commit was queued, or the preview was removed), on the node that deploys.</summary>
    public void Wake(string teamId)
    {
        if (_stopping.IsCancellationRequested || !_deploying)
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
        // The build may run on another node: every node's worker for the team stops its own.
        var running = await db.PreviewDeploys.AnyAsync(d => d.TeamId == teamId && (d.Status == PreviewStatuses.Building || d.Status == PreviewStatuses.Starting), cancellationToken);
        signals.Send(CancelSignal, teamId);
        if (queued.Count > 0 || running)
        {
            await events.ChangedAsync(teamId, cancellationToken);
        }
        return queued.Count > 0 || running;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        service.Queued += OnQueued;
        signals.Received += OnSignal;
        var nextCheck = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var holding = await leases.HoldAsync(LeaseName, node.Id, LeaseDuration, stoppingToken);
                if (holding && !_deploying)
                {
                    // This node deploys now (it started, or the one that deployed stopped or died): what that one left is redone.
                    _deploying = true;
                    PreviewsLog.Deploying(logger, node.Id);
                    await RecoverAsync(stoppingToken);
                }
                else if (!holding && _deploying)
                {
                    // Silent past its lease (stalled): another node deploys now; what this one was doing stops.
                    _deploying = false;
                    await StopWorkersAsync();
                }
                if (_deploying)
                {
                    await WatchLiveAsync(stoppingToken);
                    if (options.Value.CheckSeconds > 0 && time.GetUtcNow() >= nextCheck)
                    {
                        nextCheck = time.GetUtcNow().AddSeconds(options.Value.CheckSeconds);
                        await CheckBranchesAsync(stoppingToken);
                    }
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

    /// <summary>A deploy was queued on this node: the node that deploys hears of it, wherever it is.</summary>
    private void OnQueued(string teamId) => signals.Send(QueuedSignal, teamId);

    private void OnSignal(string signal, string teamId)
    {
        switch (signal)
        {
            case QueuedSignal:
                Wake(teamId);
                break;
            case CancelSignal when _workers.TryGetValue(teamId, out var worker) && worker.Current is { IsCancellationRequested: false } current:
                _ = current.CancelAsync();
                break;
            case SwitchedSignal:
                proxy.Switched(teamId);
                break;
        }
    }

    private async Task StopWorkersAsync()
    {
        foreach (var worker in _workers.Values)
        {
            if (worker.Current is { } current)
            {
                await current.CancelAsync();
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
                while (_deploying && await NextAsync(teamId, _stopping) is { } next)
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

    internal static string Short(string commit) => commit.Length > 7 ? commit[..7] : commit;

    /// <summary>Stops the workers too, and waits for them (a fetch under way is stopped): nothing of theirs runs on after the server.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        service.Queued -= OnQueued;
        signals.Received -= OnSignal;
        await base.StopAsync(cancellationToken);
        var loops = _workers.Values.Select(w => w.Loop).OfType<Task>().ToArray();
        await Task.WhenAny(Task.WhenAll(loops), Task.Delay(TimeSpan.FromSeconds(10), time, cancellationToken));
        try
        {
            // Another node deploys from now on, at once rather than when the lease runs out.
            await leases.ReleaseAsync(LeaseName, node.Id, cancellationToken);
        }
        catch (Exception e) when (e is ObjectDisposedException or DbUpdateException or InvalidOperationException)
        {
            // The database is away: the lease runs out by itself.
        }
    }

    private sealed class TeamWorker
    {
        public SemaphoreSlim Signal { get; } = new(0);
        public Task? Loop { get; set; }
        public CancellationTokenSource? Current { get; set; }
    }
}
