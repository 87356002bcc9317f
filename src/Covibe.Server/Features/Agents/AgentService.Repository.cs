using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

public sealed partial class AgentService
{
    /// <summary>
    /// Whether the new agent works on the team's repository, and its branch there: the default once the team has one, for
    /// an agent given no repository address and no box (its work tree borrows the team's mirror on this machine, or is
    /// cloned from a bundle of it on a VM). Asked for (<c>teamRepository</c> or <c>baseBranch</c>) where that cannot be: refused, with why.
    /// </summary>
    private async Task<(AgentBranch? Branch, AgentResult? Refused)> BranchAsync(
        Caller caller, SpawnAgentRequest request, Place placement, string agentId, string task, CancellationToken cancellationToken)
    {
        var asked = request.TeamRepository == true || request.BaseBranch is not null;
        if (request.TeamRepository == false || !string.IsNullOrWhiteSpace(request.RepositoryUrl) || !string.IsNullOrEmpty(request.BoxId))
        {
            return asked ? (null, Invalid("teamRepository", "An agent works on the team's repository, on a repository address ('repositoryUrl') or in a box: give one.")) : (null, null);
        }
        // Read with the team's row when placed: a team without one costs no round trip more.
        if ((!placement.TeamHasRepository && !asked) || await branches.ConnectedAsync(caller.TeamId, cancellationToken) is not { } repository)
        {
            return asked ? (null, Invalid("teamRepository", "The team has no repository yet: its owner connects one (covibe repo connect, or the Workshop).")) : (null, null);
        }
        if (!placement.HoldsWorkTrees)
        {
            return asked
                ? (null, Invalid("vmId", "Where this agent would run cannot hold a work tree of the team's repository: run it on the server or a VM, or give 'repositoryUrl'."))
                : (null, null);
        }
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            var kept = await db.Agents.CountAsync(a => a.TeamId == caller.TeamId && a.WorkBranch != null && a.TreeDiscardedAt == null, cancellationToken);
            if (kept >= repositoryOptions.Value.MaxWorktreesPerTeam)
            {
                return (null, AgentResult.Fail(AgentFailure.TooMany,
                    $"Your team keeps {kept} agents' branches and work trees (the limit, Covibe:Repositories:MaxWorktreesPerTeam). Merge or discard some first (covibe agent discard ID)."));
            }
        }
        try
        {
            return (await branches.StartAsync(repository, agentId, task, request.BaseBranch?.Trim(), cancellationToken), null);
        }
        catch (RequestRefusedException e)
        {
            return (null, AgentResult.Fail(AgentFailure.RepositoryUnreachable, e.Message));
        }
    }

    private static AgentResult Invalid(string field, string message) =>
        new(null, AgentFailure.Invalid, "Fix the fields listed in 'errors'.", new() { [field] = [message] });
}
