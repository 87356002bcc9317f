using Covibe.Server.Features.Repositories;
using Covibe.Server.Features.Cluster;
using Covibe.Server.Features.Git;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Seed 002's pool manager (<c>reconcilePools</c>, run on a schedule and after every claim or change), on one node
/// only (<see cref="Leases"/>): keeps each pool's <c>minStandby</c> boxes ready without ever exceeding
/// <c>maxInstances</c> (claimed boxes count), replaces ready boxes of an older commit once its branch moved, and
/// leaves a backed-off or paused pool alone.
/// </summary>
public sealed class PoolReconciler(
    IDbContextFactory<CovibeDb> dbs,
    BoxWork work,
    Leases leases,
    GitMirror git,
    RepositoryAccess repositories,
    IOptions<BoxesOptions> options,
    TimeProvider time,
    ILogger<PoolReconciler> logger) : BackgroundService
{
    public const string LeaseName = "pool-reconciler";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(options.Value.ReconcileSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await leases.HoldAsync(LeaseName, work.Node, interval * 3, stoppingToken))
                {
                    await ReconcileAsync(stoppingToken);
                }
            }
            catch (Exception e) when (e is DbUpdateException or InvalidOperationException or IOException && !stoppingToken.IsCancellationRequested)
            {
                BoxesLog.ReconcileFailed(logger, e);
            }
            await work.ReconcileRequestedAsync(interval, stoppingToken);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            // Another node may take over at once, instead of when the lease runs out.
            await leases.ReleaseAsync(LeaseName, work.Node, cancellationToken);
        }
        catch (Exception e) when (e is ObjectDisposedException or DbUpdateException or InvalidOperationException)
        {
            // Stopped twice, or the database is away: the lease runs out by itself.
        }
    }

    /// <summary>One pass over every pool.</summary>
    public async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        List<BoxPool> pools;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            pools = await db.BoxPools.AsNoTracking().ToListAsync(cancellationToken);
            // Standbys of pools that are no more (the owner removed them): released. Claimed boxes stay their holders'.
            var orphaned = await db.Boxes.Where(b => b.PoolId == null && b.HolderId == null
                && (b.Status == BoxStatuses.Ready || b.Status == BoxStatuses.Provisioning)).ToListAsync(cancellationToken);
            Retire(orphaned, "its pool was removed");
            await db.SaveChangesAsync(cancellationToken);
            if (orphaned.Count > 0)
            {
                work.Provision();
            }
        }
        foreach (var pool in pools)
        {
            await ReconcileAsync(pool, cancellationToken);
        }
    }

    private async Task ReconcileAsync(BoxPool pool, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var head = pool.HeadCommit;
        (string? Head, string? Error)? looked = null;
        if (pool.HeadCheckedAt is null || now - pool.HeadCheckedAt >= TimeSpan.FromSeconds(options.Value.HeadCheckSeconds) || head is null)
        {
            looked = await ReadHeadAsync(pool, cancellationToken);
            head = looked.Value.Head ?? head;
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var current = await db.BoxPools.SingleOrDefaultAsync(p => p.Id == pool.Id, cancellationToken);
        if (current is null)
        {
            return;
        }
        if (looked is var (newHead, error))
        {
            // Saved with the boxes it replaces, in one commit: nobody sees the new head while only old boxes stand ready.
            RecordHead(current, newHead, error, now);
        }
        var boxes = await db.Boxes.Where(b => b.PoolId == pool.Id && (b.Status == BoxStatuses.Ready || b.Status == BoxStatuses.Provisioning)).ToListAsync(cancellationToken);
        var standby = boxes.Where(b => b.HolderId == null).ToList();
        var fresh = standby.Where(b => b.Commit == head).ToList();
        var stale = standby.Where(b => b.Commit != head && b.Status == BoxStatuses.Ready).OrderBy(b => b.ReadyAt).ToList();
        var staleProvisioning = standby.Where(b => b.Commit != head && b.Status == BoxStatuses.Provisioning).ToList();
        var retired = new List<Box>();
        // Boxes still being made for an old commit are not worth finishing.
        retired.AddRange(staleProvisioning);
        var total = boxes.Count - staleProvisioning.Count;
        var created = 0;
        var waiting = current.PausedReason is not null || current.ResumeAt > now || head is null;
        var need = current.MinStandby - fresh.Count;
        if (!waiting)
        {
            // Room for new boxes comes from the ready ones of an older commit first.
            while (need > 0 && total >= current.MaxInstances && stale.Count > 0)
            {
                retired.Add(stale[0]);
                stale.RemoveAt(0);
                total--;
            }
            var make = Math.Min(need, current.MaxInstances - total);
            for (var i = 0; i < make; i++)
            {
                db.Boxes.Add(new Box
                {
                    Id = Tokens.NewId(),
                    TeamId = current.TeamId,
                    PoolId = current.Id,
                    RepoUrl = current.RepoUrl,
                    Branch = current.BaseBranch,
                    Commit = head,
                    Status = BoxStatuses.Provisioning,
                    Step = BoxSteps.Queued,
                    Backend = current.Backend,
                    CreatedAt = now,
                });
                created++;
            }
            total += Math.Max(0, make);
        }
        // Once enough boxes of the branch's head are ready, the older ones go.
        if (fresh.Count(b => b.Status == BoxStatuses.Ready) >= current.MinStandby)
        {
            retired.AddRange(stale);
            stale.Clear();
        }
        // Fewer wanted now (minStandby or maxInstances lowered): ready standbys beyond them go, newest first.
        var readyFresh = fresh.Where(b => b.Status == BoxStatuses.Ready).OrderByDescending(b => b.ReadyAt).ToList();
        var surplus = Math.Max(readyFresh.Count - current.MinStandby, total - current.MaxInstances);
        retired.AddRange(readyFresh.Take(Math.Max(0, Math.Min(surplus, readyFresh.Count))));
        Retire(retired, "replaced");
        await db.SaveChangesAsync(cancellationToken);
        if (created > 0 || retired.Count > 0)
        {
            BoxesLog.Reconciled(logger, current.Id, created, retired.Count);
            work.Provision();
        }
    }

    /// <summary>The branch's head now, or why it could not be read.</summary>
    private async Task<(string? Head, string? Error)> ReadHeadAsync(BoxPool pool, CancellationToken cancellationToken)
    {
        try
        {
            var head = await git.HeadAsync(await repositories.RemoteAsync(pool.TeamId, pool.RepoUrl, options.Value.AllowLocalRepositories, cancellationToken), pool.BaseBranch, cancellationToken);
            return head is null ? (null, $"The repository has no branch '{pool.BaseBranch}' any more.") : (head, null);
        }
        catch (GitMirrorException e)
        {
            return (null, $"The repository could not be read: {e.Message}");
        }
    }

    /// <summary>Records a look at the branch's head on the pool: a moved branch also ends a pause; a failure is its last error.</summary>
    private static void RecordHead(BoxPool row, string? head, string? error, DateTime now)
    {
        row.HeadCheckedAt = now;
        if (head is null)
        {
            row.LastError = error;
            return;
        }
        if (row.HeadCommit != head && row.PausedReason is not null)
        {
            // New commits: worth another try.
            row.PausedReason = null;
            row.Failures = 0;
            row.ResumeAt = null;
        }
        row.HeadCommit = head;
    }

    private void Retire(List<Box> boxes, string why)
    {
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var box in boxes)
        {
            box.Status = BoxStatuses.Released;
            box.Step = BoxSteps.Released;
            box.ReleasedAt = now;
            box.Error = $"Retired: {why}.";
        }
    }
}
