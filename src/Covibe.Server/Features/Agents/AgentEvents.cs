using Covibe.Protocol;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Agents;

/// <summary>Tells the team when an agent's status or reported totals change (seed 001's <c>agent_status</c>).</summary>
public sealed class AgentEvents(IDbContextFactory<CovibeDb> dbs, ITeamEvents events, AgentFeeds streams, AgentControl control)
{
    // An agent's changes are told one at a time, each as the agent is stored then: a caller holding an older copy (an
    // approval's recount, read just before the agent ended) told the team "running" after "completed", and every page
    // showed it running for good. Striped by agent, so no lock outlives its agent.
    private readonly SemaphoreSlim[] _order = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    /// <summary>Tells the team <paramref name="agent"/>'s state as stored now (every caller saves its change first).</summary>
    public async Task StatusChangedAsync(Agent agent, CancellationToken cancellationToken)
    {
        var order = _order[(uint)StringComparer.Ordinal.GetHashCode(agent.Id) % (uint)_order.Length];
        await order.WaitAsync(cancellationToken);
        try
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            var stored = await (from a in db.Agents.AsNoTracking()
                                where a.Id == agent.Id
                                join u in db.Users on a.UserId equals u.Id
                                select new { Agent = a, Owner = u.Name }).SingleOrDefaultAsync(cancellationToken);
            if (stored is not { Agent: var current, Owner: var ownerName })
            {
                return; // no longer stored: nothing to tell
            }
            var controllers = await control.ControllersAsync(current.Id, current.UserId, cancellationToken);
            events.Publish(current.TeamId, controllers, canControl => new AgentStatusMessage(current.Id, current.Status, ToDto(current, ownerName, canControl)));
        }
        finally
        {
            order.Release();
        }
    }

    public AgentDto ToDto(Agent agent, string ownerName, bool canControl) => new(
        agent.Id, agent.TeamId, agent.UserId, ownerName, agent.Type, agent.Task, agent.RepositoryUrl, agent.Branch,
        agent.Status, agent.CreatedAt, agent.StartedAt, agent.CompletedAt, agent.ExitCode,
        // A running agent's length is the live stream's; the stored one is updated as it reports and when it ends.
        streams.Get(agent.Id)?.Position ?? agent.OutputBytes,
        agent.CostUsd, agent.InputTokens, agent.OutputTokens, agent.Model, agent.Error, canControl, agent.Backend,
        agent.WorkBranch, agent.BaseCommit, agent.TreeDiscardedAt is not null, agent.PendingApprovals, agent.PermissionMode);
}
