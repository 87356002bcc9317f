using Covibe.Execution.Egress;

namespace Covibe.Server.Features.Egress;

/// <summary>
/// What the placement of a job asks: the team's egress policy, ready to hold where the job runs (a sandbox's network
/// namespace, or the team's bridge: its chain put there, the proxy listening), and where the job reaches the proxy.
/// Open policies and other machines need nothing.
/// </summary>
public sealed class EgressEnforcement(EgressPolicies policies, EgressProxy proxy, ContainerEgress containers)
{
    /// <param name="chosenMode">The team's row's <c>egress_mode</c>, and <paramref name="allow"/> its <c>egress_allow</c> (the placement reads the row once).</param>
    /// <param name="running">For a job in a container that runs already (a box's): that container.</param>
    public async Task<(TeamEgress? Egress, string? ProxyHost)> ForAsync(string teamId, string? chosenMode, string? allow, EgressWall wall, string? running,
        CancellationToken cancellationToken)
    {
        if (wall == EgressWall.Elsewhere)
        {
            return (null, null);
        }
        var policy = policies.InForce(chosenMode, allow).Policy;
        if (!policy.Restricted)
        {
            return (null, null);
        }
        var port = await proxy.ListeningAsync(cancellationToken);
        var egress = new TeamEgress(teamId, policy, TeamEgress.SandboxSourceOf(await policies.SlotAsync(teamId, cancellationToken)), port);
        return wall == EgressWall.TeamBridge
            ? (egress, await containers.EnsureAsync(egress, running, cancellationToken))
            : (egress, TeamEgress.SandboxHost);
    }

    /// <summary>After the team's policy changed: its containers that run on this machine follow it at once.</summary>
    public async Task ApplyToRunningAsync(string teamId, EgressPolicy policy, CancellationToken cancellationToken)
    {
        var egress = policy.Restricted
            ? new TeamEgress(teamId, policy, TeamEgress.SandboxSourceOf(await policies.SlotAsync(teamId, cancellationToken)), await proxy.ListeningAsync(cancellationToken))
            : null;
        await containers.ApplyAsync(teamId, egress, cancellationToken);
    }
}
