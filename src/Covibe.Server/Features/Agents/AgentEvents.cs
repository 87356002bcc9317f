using Covibe.Protocol;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Agents;

/// <summary>Tells the team when an agent's status or reported totals change (seed 001's <c>agent_status</c>).</summary>
public sealed class AgentEvents(IDbContextFactory<CovibeDb> dbs, ITeamEvents events, AgentFeeds streams, AgentControl control)
{
    public async Task StatusChangedAsync(Agent agent, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var ownerName = await db.Users.Where(u => u.Id == agent.UserId).Select(u => u.Name).SingleAsync(cancellationToken);
        var controllers = await control.ControllersAsync(agent.Id, agent.UserId, cancellationToken);
        events.Publish(agent.TeamId, controllers, canControl => new AgentStatusMessage(agent.Id, agent.Status, ToDto(agent, ownerName, canControl)));
    }

    public AgentDto ToDto(Agent agent, string ownerName, bool canControl) => new(
        agent.Id, agent.TeamId, agent.UserId, ownerName, agent.Type, agent.Task, agent.RepositoryUrl, agent.Branch,
        agent.Status, agent.CreatedAt, agent.StartedAt, agent.CompletedAt, agent.ExitCode,
        // A running agent's length is the live stream's; the stored one is updated as it reports and when it ends.
        streams.Get(agent.Id)?.Position ?? agent.OutputBytes,
        agent.CostUsd, agent.InputTokens, agent.OutputTokens, agent.Model, agent.Error, canControl, agent.Backend,
        agent.WorkBranch, agent.BaseCommit, agent.TreeDiscardedAt is not null, agent.PendingApprovals, agent.PermissionMode);
}
