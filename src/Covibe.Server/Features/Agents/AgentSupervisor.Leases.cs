using Covibe.Protocol;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>The supervisor's other job: which agents this node follows (leases renewed, agents nobody follows taken up, given up on stopping).</summary>
public sealed partial class AgentSupervisor
{
    /// <summary>
    /// Stopping in order (a restart): the agents run on; their leases are given up once this node no longer follows
    /// them, so another node takes them over within one <see cref="AgentLeases.Interval"/> instead of a whole lease.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await leases.ReleaseAllAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            AgentsLog.TendFailed(logger, e); // they run out by themselves
        }
    }

    /// <summary>
    /// Renews this node's leases (stopping what another node took over, or what it can no longer reach), takes up the
    /// agents nobody follows, and ends the feeds of agents that another node saw finish if this node missed the news.
    /// </summary>
    private async Task TendAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(leases.Interval, time);
        do
        {
            try
            {
                var pass = time.GetUtcNow().UtcDateTime;
                var held = await leases.RenewAsync(cancellationToken);
                foreach (var (id, following) in _following)
                {
                    if (following.Since >= pass)
                    {
                        continue; // its lease was taken after the renewal (or is being taken)
                    }
                    if (!held.Contains(id))
                    {
                        await following.Stop.CancelAsync(); // another node follows it now
                    }
                    else if (following.Where is var (backend, process) && !await backend.CanFollowAsync(process, cancellationToken))
                    {
                        // It moved out of reach (a runner that connected to another node): leave it to a node that can reach it.
                        await following.Stop.CancelAsync();
                        await leases.ReleaseAsync(id, cancellationToken);
                    }
                }
                foreach (var id in await leases.UnfollowedAsync(cancellationToken))
                {
                    if (!_following.ContainsKey(id))
                    {
                        _watch.Writer.TryWrite((id, true));
                    }
                }
                await EndFinishedElsewhereAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                AgentsLog.TendFailed(logger, e);
            }
        }
        while (await WaitAsync(timer, cancellationToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Feeds of agents followed elsewhere whose end this node did not hear of (Redis was away): the database knows.</summary>
    private async Task EndFinishedElsewhereAsync(CancellationToken cancellationToken)
    {
        var open = streams.All.Where(f => f.FinalStatus is null && !_following.ContainsKey(f.AgentId)).Select(f => f.AgentId).ToList();
        if (open.Count == 0)
        {
            return;
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var finished = await db.Agents.Where(a => open.Contains(a.Id) && AgentStatuses.Final.Contains(a.Status))
            .Select(a => new { a.Id, a.Status, a.OutputBytes }).ToListAsync(cancellationToken);
        foreach (var agent in finished)
        {
            if (streams.Get(agent.Id) is { } feed)
            {
                feed.End(agent.Status, agent.OutputBytes);
                streams.Close(feed);
            }
        }
    }
}
