using System.Collections.Concurrent;
using System.Net;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Covibe.Execution.Containers;

/// <summary>
/// Each team's network, when the operator's <see cref="ContainerSettings.Network"/> is <see cref="ContainerSettings.PerTeam"/>:
/// a bridge of the team's own, made through the Engine API the first time one of its containers (agent, workspace,
/// preview, box) needs it, and removed once nothing of the team has used it for a while. The bridge is named
/// <c>covibe</c> + a hash of the team (<see cref="BridgeName"/>), which is what this machine's firewall matches
/// (<see cref="TeamNetworkFirewall"/>), and is isolated from other isolated networks by the engine too (Podman's
/// <c>isolate</c>; Docker's bridges are isolated from each other by default).
/// </summary>
public sealed class TeamNetworks(ManagedContainers containers, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, string> _known = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _handedOut = new();
    private readonly ConcurrentDictionary<string, string> _gateways = new();
    private volatile List<(string Team, Egress.EgressCidr Subnet)>? _subnets;
    private DateTimeOffset _subnetsAt;

    /// <summary>The name of a team's network in the engine.</summary>
    public static string NetworkName(string teamId) => $"covibe-team-{teamId}";

    /// <summary>The name of a team's bridge on this machine: at most 15 characters, as Linux wants, and the same for the team on every start.</summary>
    public static string BridgeName(string teamId) =>
        TeamNetworkFirewall.BridgePrefix + Egress.TeamEgress.KeyOf(teamId);

    /// <summary>Whether each team gets a network of its own here.</summary>
    public bool PerTeam => containers.Settings.Network == ContainerSettings.PerTeam;

    /// <summary>The network the team's next container joins: the team's own (made now if it is not there), or the operator's shared one.</summary>
    public async Task<string> ForAsync(string teamId, CancellationToken cancellationToken)
    {
        if (!PerTeam)
        {
            return containers.Settings.Network;
        }
        _handedOut[teamId] = time.GetUtcNow();
        if (_known.TryGetValue(teamId, out var known))
        {
            return known;
        }
        var name = NetworkName(teamId);
        await containers.ReachAsync(async () =>
        {
            try
            {
                await containers.Docker.Networks.InspectNetworkAsync(name, cancellationToken);
            }
            catch (DockerNetworkNotFoundException)
            {
                await CreateAsync(teamId, name, cancellationToken);
            }
        }, cancellationToken);
        _known[teamId] = name;
        return name;
    }

    /// <summary>This machine's address on the team's network (its gateway), made first if need be: where its containers reach the egress proxy.</summary>
    public async Task<string> GatewayAsync(string teamId, CancellationToken cancellationToken)
    {
        if (_gateways.TryGetValue(teamId, out var known))
        {
            return known;
        }
        var network = await ForAsync(teamId, cancellationToken);
        var inspect = await containers.ReachAsync(() => containers.Docker.Networks.InspectNetworkAsync(network, cancellationToken), cancellationToken);
        var gateway = inspect.IPAM?.Config?.Select(c => c.Gateway).FirstOrDefault(g => !string.IsNullOrEmpty(g))
            ?? throw new IOException($"The engine gives the network {network} no gateway address.");
        _gateways[teamId] = gateway;
        return gateway;
    }

    /// <summary>The team whose network <paramref name="address"/> is on (a container of it), or null.</summary>
    public async Task<string?> TeamOfAddressAsync(System.Net.IPAddress address, CancellationToken cancellationToken)
    {
        // Asked again every 5 s, or for an address it does not know (a network made since) at most once a second: a stranger
        // knocking on the proxy again and again costs no call to the engine each time.
        var subnets = _subnets;
        var age = time.GetUtcNow() - _subnetsAt;
        if (subnets is null || age > TimeSpan.FromSeconds(5) || (age > TimeSpan.FromSeconds(1) && !subnets.Any(s => s.Subnet.Contains(address))))
        {
            var networks = await containers.ReachAsync(() => containers.Docker.Networks.ListNetworksAsync(new NetworksListParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [ManagedContainers.ManagedLabel + "=true"] = true } },
            }, cancellationToken), cancellationToken);
            subnets = [.. networks.Where(n => n.Labels is not null && n.Labels.ContainsKey(ManagedContainers.TeamLabel))
                .SelectMany(n => (n.IPAM?.Config ?? []).Select(c => (Team: n.Labels[ManagedContainers.TeamLabel], Subnet: Egress.EgressCidr.TryParse(c.Subnet ?? "", out var cidr) ? cidr : null)))
                .Where(s => s.Subnet is not null).Select(s => (s.Team, s.Subnet!))];
            _subnets = subnets;
            _subnetsAt = time.GetUtcNow();
        }
        return subnets.Where(s => s.Subnet.Contains(address)).Select(s => s.Team).FirstOrDefault();
    }

    /// <summary>Whether the running <paramref name="container"/> is on the team's own network (a box made before teams had one is not).</summary>
    public async Task<bool> OnTeamNetworkAsync(string container, string teamId, CancellationToken cancellationToken)
    {
        var inspect = await containers.ReachAsync(() => containers.Docker.Containers.InspectContainerAsync(container, cancellationToken), cancellationToken);
        return inspect.NetworkSettings?.Networks?.ContainsKey(NetworkName(teamId)) == true;
    }

    private async Task CreateAsync(string teamId, string name, CancellationToken cancellationToken)
    {
        try
        {
            await containers.Docker.Networks.CreateNetworkAsync(new NetworksCreateParameters
            {
                Name = name,
                Driver = "bridge",
                Options = new Dictionary<string, string>
                {
                    ["com.docker.network.bridge.name"] = BridgeName(teamId),
                    // Podman (CNI): its firewall plugin lets only the same bridge in ("not a recognized option", it warns, and applies it).
                    ["isolate"] = "true",
                },
                Labels = new Dictionary<string, string> { [ManagedContainers.ManagedLabel] = "true", [ManagedContainers.TeamLabel] = teamId },
            }, cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.Conflict)
        {
            // Made a moment ago by another node or process sharing the engine.
        }
    }

    /// <summary>
    /// Removes the teams' networks that no container is on and that no container was given for <paramref name="idle"/>
    /// (nor made within it): answers the names removed. A network in use is left (the engine refuses).
    /// </summary>
    public async Task<IReadOnlyList<string>> RemoveIdleAsync(TimeSpan idle, CancellationToken cancellationToken)
    {
        if (!PerTeam)
        {
            return [];
        }
        var networks = await containers.ReachAsync(() => containers.Docker.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [ManagedContainers.ManagedLabel + "=true"] = true } },
        }, cancellationToken), cancellationToken);
        var all = await containers.ReachAsync(() => ManagedContainers.ListAsync(containers.Docker, new ContainersListParameters { All = true }, cancellationToken), cancellationToken);
        var used = all.SelectMany(c => c.NetworkSettings?.Networks?.Keys ?? []).ToHashSet(StringComparer.Ordinal);
        var now = time.GetUtcNow();
        var removed = new List<string>();
        foreach (var network in networks)
        {
            if (network.Labels is null || !network.Labels.TryGetValue(ManagedContainers.TeamLabel, out var teamId) || network.Name != NetworkName(teamId) || used.Contains(network.Name))
            {
                continue;
            }
            var lastUse = _handedOut.TryGetValue(teamId, out var at) ? at : new DateTimeOffset(network.Created.ToUniversalTime(), TimeSpan.Zero);
            if (now - lastUse < idle)
            {
                continue;
            }
            // Forgotten first: a container given the network from here on makes it again (the idle time makes that rare).
            _known.TryRemove(teamId, out _);
            _gateways.TryRemove(teamId, out _);
            try
            {
                await containers.ReachAsync(() => containers.Docker.Networks.DeleteNetworkAsync(network.ID, cancellationToken), cancellationToken);
                removed.Add(network.Name);
            }
            catch (DockerApiException)
            {
                // In use after all (a container joined since the list), or gone already.
            }
        }
        return removed;
    }
}
