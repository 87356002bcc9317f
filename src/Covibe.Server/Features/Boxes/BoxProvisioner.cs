using Covibe.Server.Features.Git;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Covibe.Execution;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Execution.Containers;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Seed 002's provisioner: takes boxes waiting to be made (members' requests first; pool standbys never in the last
/// free slot), each under a lease this node renews, and has <see cref="BoxBuilder"/> make them, within a time limit. A
/// box whose lease ran out (its node died) or that this node held when it stopped is made again from the start; one
/// that fails is failed with the reason, and its pool backs off, then pauses. Released and failed boxes are cleaned up
/// here too (<see cref="BoxRestorer"/> gives ready boxes their <c>.env</c> back after a restart).
/// </summary>
public sealed class BoxProvisioner(
    IDbContextFactory<CovibeDb> dbs,
    BoxWork work,
    BoxBuilder builder,
    BoxProgress progress,
    BoxKinds kinds,
    Cluster.Leases leases,
    IOptions<BoxesOptions> options,
    TimeProvider time,
    ILogger<BoxProvisioner> logger) : BackgroundService
{
    private static readonly TimeSpan LeaseTime = TimeSpan.FromSeconds(60);
    private const int MaxAttempts = 3;
    private readonly ConcurrentDictionary<string, (Task Task, CancellationTokenSource Stop, bool Pool)> _running = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await StopReleasedAsync(stoppingToken);
                await CleanupAsync(stoppingToken);
                await StartWaitingAsync(stoppingToken);
            }
            catch (Exception e) when (e is DbUpdateException or InvalidOperationException or IOException && !stoppingToken.IsCancellationRequested)
            {
                BoxesLog.ProvisionCrashed(logger, "-", e);
            }
            await work.ProvisionRequestedAsync(TimeSpan.FromSeconds(2), stoppingToken);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // Unfinished boxes keep this node's lease: the next start takes them up again at once.
        foreach (var (_, running) in _running)
        {
            await running.Stop.CancelAsync();
        }
        await Task.WhenAll(_running.Values.Select(r => r.Task)).WaitAsync(cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>Boxes released while they were being made stop being made.</summary>
    private async Task StopReleasedAsync(CancellationToken cancellationToken)
    {
        if (_running.IsEmpty)
        {
            return;
        }
        var ids = _running.Keys.ToList();
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var released = await db.Boxes.Where(b => ids.Contains(b.Id) && b.Status == BoxStatuses.Released).Select(b => b.Id).ToListAsync(cancellationToken);
        foreach (var id in released)
        {
            if (_running.TryGetValue(id, out var running))
            {
                await running.Stop.CancelAsync();
            }
        }
    }

    private async Task StartWaitingAsync(CancellationToken cancellationToken)
    {
        foreach (var (id, running) in _running)
        {
            if (running.Task.IsCompleted)
            {
                _running.TryRemove(id, out _);
                running.Stop.Dispose();
            }
        }
        var max = options.Value.MaxProvisioning;
        if (_running.Count >= max)
        {
            return;
        }
        var now = time.GetUtcNow().UtcDateTime;
        List<(string Id, bool Pool)> waiting;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            // Boxes of a kind that cannot be made now (its container engine does not answer) wait, counting no attempt;
            // only the kinds of boxes waiting are asked (an idle server does not call the engine every pass).
            var down = new List<string>();
            foreach (var backend in await db.Boxes.Where(b => b.Status == BoxStatuses.Provisioning).Select(b => b.Backend).Distinct().ToListAsync(cancellationToken))
            {
                if (await kinds.Named(backend).UnreachableAsync(cancellationToken))
                {
                    down.Add(backend);
                }
            }
            waiting = (await db.Boxes.AsNoTracking()
                .Where(b => b.Status == BoxStatuses.Provisioning && !down.Contains(b.Backend)
                    && !db.Leases.Any(l => l.Name == LeasePrefix + b.Id && l.ExpiresAt >= now && l.Holder != work.Node))
                // Members' own requests first, then pool standbys; oldest first within each.
                .OrderBy(b => b.HolderId == null).ThenBy(b => b.CreatedAt)
                .Select(b => new { b.Id, Pool = b.HolderId == null }).Take(max * 4).ToListAsync(cancellationToken))
                .Select(b => (b.Id, b.Pool)).ToList();
        }
        foreach (var (id, pool) in waiting)
        {
            if (_running.ContainsKey(id) || !MayStart(pool, _running.Count, _running.Values.Count(r => r.Pool), max))
            {
                continue;
            }
            if (!await TakeLeaseAsync(id, cancellationToken))
            {
                continue;
            }
            var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _running[id] = (Task.Run(() => ProvisionAsync(id, stop.Token), CancellationToken.None), stop, pool);
        }
    }

    /// <summary>
    /// Whether a box may start provisioning with <paramref name="running"/> (<paramref name="runningPool"/> of them pool
    /// standbys) under way of <paramref name="max"/>: pool work never takes the last free slot, so a member's own request
    /// never waits behind a pool filling up.
    /// </summary>
    internal static bool MayStart(bool pool, int running, int runningPool, int max) =>
        running < max && (!pool || max == 1 || runningPool < max - 1);

    /// <summary>The lease (<see cref="Cluster.Leases"/>) a node holds on a box while it makes it.</summary>
    internal static string LeaseName(string boxId) => LeasePrefix + boxId;

    private const string LeasePrefix = "box:";

    /// <summary>
    /// Takes the box's lease, and counts the attempt, if the box still waits to be made and no other node makes it: one
    /// transaction (a node that loses the race to another counts nothing).
    /// </summary>
    private async Task<bool> TakeLeaseAsync(string id, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        if (await db.Boxes.Where(b => b.Id == id && b.Status == BoxStatuses.Provisioning)
                .ExecuteUpdateAsync(s => s.SetProperty(b => b.Attempts, b => b.Attempts + 1), cancellationToken) != 1
            || !await leases.HoldAsync(db, LeaseName(id), work.Node, LeaseTime, cancellationToken))
        {
            return false; // made, failed or released meanwhile, or another node makes it: rolled back
        }
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    private async Task ProvisionAsync(string id, CancellationToken stopping)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(TimeSpan.FromSeconds(options.Value.ProvisionTimeoutSeconds));
        var cancellationToken = deadline.Token;
        using var renewal = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var renewing = RenewAsync(id, renewal.Token);
        Box box;
        await using (var db = await dbs.CreateDbContextAsync(CancellationToken.None))
        {
            box = await db.Boxes.AsNoTracking().SingleAsync(b => b.Id == id, CancellationToken.None);
        }
        Directory.CreateDirectory(work.Root(id), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var log = new BoxLog(work.LogPath(id));
        try
        {
            if (box.Attempts > 1 || box.Step != BoxSteps.Queued)
            {
                BoxesLog.Resumed(logger, id, box.Attempts);
                log.Line($"[covibe] Picked up again after an interruption (attempt {box.Attempts}); starting over.");
                await RemoveLeftoversAsync(box, keepLog: true, CancellationToken.None);
            }
            if (box.Attempts > MaxAttempts)
            {
                throw new BoxProvisionException($"Provisioning was interrupted {MaxAttempts} times; giving up.");
            }
            await builder.MakeAsync(box, log, (db, ct) => Cluster.Leases.ReleaseAsync(db, LeaseName(id), work.Node, ct), cancellationToken);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Stopping (or released): the lease stays this node's; a released box is cleaned up.
        }
        catch (OperationCanceledException)
        {
            await FailAsync(id, $"Provisioning took longer than {options.Value.ProvisionTimeoutSeconds} s (Covibe:Boxes:ProvisionTimeoutSeconds) and was stopped.", CancellationToken.None, log);
        }
        catch (PlaceUnreachableException e)
        {
            await WaitForEngineAsync(id, e.Message, log);
        }
        catch (Exception e) when (e is BoxProvisionException or GitMirrorException or DevcontainerConfigException or ContainerImageMissingException)
        {
            await FailAsync(id, e.Message, CancellationToken.None, log);
        }
        catch (Exception e) when (e is IOException or HttpRequestException or Docker.DotNet.DockerApiException or TimeoutException or UnauthorizedAccessException)
        {
            await FailAsync(id, e.Message, CancellationToken.None, log);
        }
        catch (Exception e)
        {
            BoxesLog.ProvisionCrashed(logger, id, e);
            await FailAsync(id, "The server failed while making the box (see its log).", CancellationToken.None, log);
        }
        finally
        {
            await renewal.CancelAsync();
            await renewing.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>
    /// The box's container engine stopped answering while the box was made: not a failure of the box nor of its pool. It
    /// waits, its attempt not counted and its lease given up in one commit, and is made again from the start (what was
    /// left removed) once the engine answers.
    /// </summary>
    private async Task WaitForEngineAsync(string id, string reason, BoxLog log)
    {
        log.Line($"[covibe] {reason} The box waits for it and is made again from the start once it answers.");
        BoxesLog.WaitingForEngine(logger, id, reason);
        try
        {
            var box = await progress.SaveAsync(id, b => b.Attempts = Math.Max(0, b.Attempts - 1), CancellationToken.None,
                (db, ct) => Cluster.Leases.ReleaseAsync(db, LeaseName(id), work.Node, ct));
            if (box.HolderId is not null)
            {
                await progress.BroadcastAsync(box, CancellationToken.None);
            }
        }
        catch (OperationCanceledException)
        {
            // Released meanwhile: cleaned up once the engine answers.
        }
    }

    /// <summary>A box that could not be made: failed with the reason, its container and files removed (its log kept); a pool backs off, and pauses if it keeps failing.</summary>
    private async Task FailAsync(string id, string error, CancellationToken cancellationToken, BoxLog? log = null)
    {
        log?.Line($"[covibe] Failed: {error}");
        Box box;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            box = await db.Boxes.SingleAsync(b => b.Id == id, cancellationToken);
            if (box.Status == BoxStatuses.Released)
            {
                return;
            }
            box.Status = BoxStatuses.Failed;
            box.Step = BoxSteps.Failed;
            box.Error = error;
            // The pool's backoff or pause is saved with the failure, in one transaction: a reconcile pass in between would
            // see neither a box in the making nor a pause, and start another box of a pool that should have stopped.
            if (box.PoolId is { } poolId && await db.BoxPools.SingleOrDefaultAsync(p => p.Id == poolId, cancellationToken) is { } pool)
            {
                pool.Failures++;
                pool.LastError = error;
                var backoff = TimeSpan.FromSeconds(Math.Min(600, options.Value.BackoffSeconds * Math.Pow(2, pool.Failures - 1)));
                pool.ResumeAt = time.GetUtcNow().UtcDateTime + backoff;
                if (pool.Failures >= options.Value.PauseAfterFailures && pool.PausedReason is null)
                {
                    pool.PausedReason = $"Paused after {pool.Failures} failures in a row; the last: {error} Change the pool (PUT /api/pools) or push to its branch to try again.";
                    BoxesLog.PoolPaused(logger, pool.Id, pool.TeamId, pool.PausedReason);
                }
            }
            await db.SaveChangesAsync(cancellationToken);
            await Cluster.Leases.ReleaseAsync(db, LeaseName(id), work.Node, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            BoxesLog.Failed(logger, box.Id, box.TeamId, error);
        }
        if (box.HolderId is not null)
        {
            await progress.BroadcastAsync(box, cancellationToken);
        }
        work.Provision(); // cleaned up on the next pass
    }

    /// <summary>Removes what released and failed boxes left: their containers and files (a failed box keeps its log).</summary>
    private async Task CleanupAsync(CancellationToken cancellationToken)
    {
        List<Box> done;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            done = await db.Boxes.AsNoTracking()
                .Where(b => (b.Status == BoxStatuses.Released || b.Status == BoxStatuses.Failed) && b.CleanedAt == null)
                .OrderBy(b => b.CreatedAt).Take(20).ToListAsync(cancellationToken);
        }
        foreach (var box in done.Where(b => !_running.ContainsKey(b.Id)))
        {
            try
            {
                await RemoveLeftoversAsync(box, keepLog: box.Status == BoxStatuses.Failed, cancellationToken);
                await using var db = await dbs.CreateDbContextAsync(cancellationToken);
                await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
                await db.Boxes.Where(b => b.Id == box.Id).ExecuteUpdateAsync(s => s.SetProperty(b => b.CleanedAt, time.GetUtcNow().UtcDateTime), cancellationToken);
                // A box released while this node made it: its lease goes with it.
                await Cluster.Leases.ReleaseAsync(db, LeaseName(box.Id), work.Node, cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }
            catch (Exception e) when (e is IOException or HttpRequestException or Docker.DotNet.DockerApiException or UnauthorizedAccessException or BoxProvisionException)
            {
                BoxesLog.CleanupFailed(logger, box.Id, e.Message);
            }
        }
    }

    private async Task RemoveLeftoversAsync(Box box, bool keepLog, CancellationToken cancellationToken)
    {
        await kinds.Of(box).RemoveAsync(box, cancellationToken);
        var root = work.Root(box.Id);
        if (!Directory.Exists(root))
        {
            return;
        }
        foreach (var entry in Directory.EnumerateFileSystemEntries(root))
        {
            if (keepLog && entry == work.LogPath(box.Id))
            {
                continue;
            }
            if (Directory.Exists(entry) && new DirectoryInfo(entry).LinkTarget is null)
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }
        if (!keepLog)
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private async Task RenewAsync(string id, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(LeaseTime / 3, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                await leases.HoldAsync(LeaseName(id), work.Node, LeaseTime, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Done.
        }
    }
}
