using System.Net;
using Covibe.Execution.Containers;
using Covibe.Execution.Egress;
using Covibe.Server.Features.Containers;

namespace Covibe.Server.Features.Egress;

/// <summary>
/// A team's egress policy at its container bridge on this machine (<see cref="EgressRules.ContainerChain"/>): put there
/// before each of its containers starts (and again when the policy changes, for those that run): every time, as a firewall
/// reload may have emptied it since (one <c>iptables-restore</c>, a few milliseconds beside a container's start). Without
/// the wall around teams' networks nothing restricted starts in a container.
/// </summary>
public sealed class ContainerEgress(TeamNetworkWall wall, ContainerEngine engine)
{
    /// <summary>
    /// The team's policy on its bridge, for a container about to start (or for <paramref name="running"/>, a box's
    /// container, which must be on the team's network): answers where its containers reach the proxy (the bridge's gateway).
    /// </summary>
    public async Task<string> EnsureAsync(TeamEgress egress, string? running, CancellationToken cancellationToken)
    {
        if (!wall.Standing)
        {
            throw new EgressNotEnforcedException(egress.TeamId, $"the firewall around teams' container networks is not up: {wall.Problem ?? "each team does not get a network of its own (Covibe:Containers:Network)"}");
        }
        if (running is not null && !await engine.Containers.Networks.OnTeamNetworkAsync(running, egress.TeamId, cancellationToken))
        {
            throw new EgressNotEnforcedException(egress.TeamId, "this box was made before teams had networks of their own: release it and request a new one");
        }
        await ApplyAsync(egress.TeamId, egress, cancellationToken);
        return await engine.Containers.Networks.GatewayAsync(egress.TeamId, cancellationToken);
    }

    /// <summary>After a change of the team's policy (<paramref name="egress"/> null: open), for its containers that run.</summary>
    public async Task ApplyAsync(string teamId, TeamEgress? egress, CancellationToken cancellationToken)
    {
        if (!wall.Standing)
        {
            return;
        }
        egress ??= new TeamEgress(teamId, EgressPolicy.OpenToAll, IPAddress.Loopback, 0);
        var rules = EgressRules.ContainerChain(egress, TeamNetworkFirewall.MachineNameServers());
        if (await TeamNetworkFirewall.RunAsync(EgressRules.ContainerScript(egress, TeamNetworks.BridgeName(teamId)), rules, cancellationToken) is { } failed)
        {
            throw new IOException($"The team's egress policy could not be put on its network: {failed}");
        }
    }
}
