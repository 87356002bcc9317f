using System.Collections.Concurrent;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Machines;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Changes;

/// <summary>
/// Follows the work trees of running agents on the team's repository whose files are on this machine: one inotify watch
/// per tree (<see cref="TreeChanges"/>), so a write is read and told to the team within a moment, without any watcher
/// polling; a tree too large to watch whole is also read every few seconds. Once an agent ends, its tree is read a last
/// time.
/// </summary>
public sealed class ChangesWatch(IDbContextFactory<CovibeDb> dbs, AgentChanges changes, Workspaces workspaces, AgentLeases leases, TimeProvider time, ILogger<ChangesWatch> logger)
    : BackgroundService
{
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(150);
    private readonly TreeChanges _trees = new();
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _following = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ReconcileAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ChangesLog.WatchFailed(logger, e.Message);
            }
            await Task.Delay(TimeSpan.FromSeconds(1), time, stoppingToken);
        }
    }

    private async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var running = await db.Agents.AsNoTracking()
            .Where(a => a.WorkBranch != null && !AgentStatuses.Final.Contains(a.Status))
            .ToListAsync(cancellationToken);
        foreach (var agent in running.Where(a => !_following.ContainsKey(a.Id)))
        {
            if (changes.Elsewhere(agent))
            {
                // On a VM: read there by the node that follows the agent, every second (no watch reaches across).
                if (agent.Pid is not null && await leases.HolderAsync(agent.Id, cancellationToken) == leases.Node)
                {
                    var follow = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    _following[agent.Id] = follow;
                    _ = FollowThereAsync(agent, follow.Token);
                }
                continue;
            }
            var tree = Path.Combine(workspaces.Base, agent.TeamId, agent.WorkingDirectory);
            if (!Directory.Exists(tree))
            {
                continue; // not here, or its clone is not made yet: looked at again in a second
            }
            var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _following[agent.Id] = stop;
            _ = FollowAsync(agent, tree, stop.Token);
        }
        foreach (var (id, stop) in _following)
        {
            if (!running.Any(a => a.Id == id))
            {
                await stop.CancelAsync();
            }
        }
    }

    private async Task FollowAsync(Agent agent, string tree, CancellationToken cancellationToken)
    {
        using var watch = _trees.Watch(tree);
        ChangesLog.Watching(logger, agent.Id, watch.Partial ? "in part" : "whole");
        await FollowAsync(agent, async () =>
        {
            await watch.WaitAsync(watch.Partial ? TimeSpan.FromSeconds(5) : TimeSpan.FromSeconds(30), cancellationToken);
            // A burst of writes (a file saved in parts, a formatter run) is read once.
            await Task.Delay(Settle, time, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>An agent's tree on a VM, read there each second (one short command over the VM's shared connection).</summary>
    private Task FollowThereAsync(Agent agent, CancellationToken cancellationToken)
    {
        ChangesLog.Watching(logger, agent.Id, "on its VM, every second");
        return FollowAsync(agent, () => Task.Delay(TimeSpan.FromSeconds(1), time, cancellationToken), cancellationToken);
    }

    private async Task FollowAsync(Agent agent, Func<Task> nextChange, CancellationToken cancellationToken)
    {
        try
        {
            await changes.RefreshAsync(agent, cancellationToken);
            while (!cancellationToken.IsCancellationRequested)
            {
                await nextChange();
                await changes.RefreshAsync(agent, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            // Its last state, for whoever opens it after it ended.
            using var last = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await changes.RefreshAsync(agent, last.Token);
            }
            catch (OperationCanceledException)
            {
            }
            changes.Forget(agent.Id);
            if (_following.TryRemove(agent.Id, out var stop))
            {
                stop.Dispose();
            }
        }
    }

    public override void Dispose()
    {
        _trees.Dispose();
        base.Dispose();
    }
}
