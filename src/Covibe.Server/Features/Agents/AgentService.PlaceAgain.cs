using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Machines;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

public sealed partial class AgentService
{
    /// <summary>
    /// A new agent whose place did not answer (a container engine that stopped since it was last asked): that place is
    /// known to be down now, so placing it again gives the fallback (sandboxed on this machine, saying why) and it starts
    /// there; or, with nowhere to run, it goes and the caller hears why (503).
    /// </summary>
    private async Task<AgentResult> PlaceAgainAsync(CovibeDb db, Agent agent, Caller caller, SpawnAgentRequest request, CancellationToken cancellationToken)
    {
        string problem;
        try
        {
            var placement = await machines.PlaceAsync(caller.TeamId, caller.UserId, request.VmId, request.BoxId, cancellationToken);
            agent.Backend = placement.Backend;
            agent.Target = placement.Target;
            agent.WorkingDirectory = placement.WorkingDirectory ?? agent.Id;
            return await StartAsync(db, agent, placement, caller, cancellationToken);
        }
        catch (Exception e) when (e is PlacementUnavailableException or PlaceUnreachableException)
        {
            problem = e.Message;
        }
        await db.Agents.Where(a => a.Id == agent.Id).ExecuteDeleteAsync(CancellationToken.None);
        return AgentResult.Fail(AgentFailure.NowhereToRun, problem);
    }
}
