using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Covibe.Execution.Containers;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Each team's containers on a network of their own, against a real Podman: tried as an attacker in team A's agent
/// container, knocking on team B's container, this machine (the engine's gateway address, its own address, a
/// service on every address as the server's port is in production), the cloud metadata address and a private
/// network, beside its own team's container and the "internet" (a network namespace standing in for it).
/// </summary>
[Collection(PodmanGroup.Name)]
public sealed class TeamNetworkTests(PodmanService podman)
{
    [Fact]
    public async Task FromTeamAsAgentContainer_AnotherTeamThisMachineMetadataAndPrivateNetworksAreOutOfReach_ItsOwnTeamAndTheInternetAreNot()
    {
        await using var outside = await OutsideNetwork.StartAsync();
        using var everywhere = new TcpListener(IPAddress.Any, 0);
        everywhere.Start();
        var hostPort = ((IPEndPoint)everywhere.LocalEndpoint).Port;
        var settings = podman.Settings();
        AgentHelpers.AddType(settings, "listener", ["node", "-e", "require('net').createServer(s => s.end('hi')).listen(7000, () => console.log('listening'))"]);
        AgentHelpers.AddType(settings, "knock", ["node", "-e", NetworkIsolationTests.Knock, "{task}"]);
        var logs = new LogSink();
        await using var server = await TestServer.StartAsync(settings: settings, logs: logs);
        logs.Lines.ShouldContain(line => line.Contains("Each team's containers get a network of their own, walled off from other teams, this machine and private and link-local addresses"));
        var a = await server.CreateTeamAsync("Initech", "Ann");
        var b = await server.CreateTeamAsync("Globex", "Bob");
        var theirs = await ListenAsync(server, b);
        var ours = await ListenAsync(server, a);

        // Each team's bridge is on this machine, named for the firewall; the gateway is this machine's address on it.
        var bridges = NetworkInterface.GetAllNetworkInterfaces().Select(n => n.Name).ToList();
        bridges.ShouldContain(TeamNetworks.BridgeName(a.Auth.Team.Id));
        bridges.ShouldContain(TeamNetworks.BridgeName(b.Auth.Team.Id));
        var gateway = (await podman.Client.Networks.InspectNetworkAsync(TeamNetworks.NetworkName(a.Auth.Team.Id))).IPAM.Config.Single().Gateway;
        var hostAddress = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => !n.Name.StartsWith("cni", StringComparison.Ordinal) && !n.Name.StartsWith("covibe", StringComparison.Ordinal) && !n.Name.StartsWith("cvo", StringComparison.Ordinal))
            .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(u => u.Address)
            .First(address => address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(address));

        string[] outOfReach = [$"{theirs}:7000", $"{gateway}:{hostPort}", $"{hostAddress}:{hostPort}", $"{OutsideNetwork.Metadata}:{OutsideNetwork.Port}", $"{OutsideNetwork.Private}:{OutsideNetwork.Port}"];
        string[] inReach = [$"{ours}:7000", $"{OutsideNetwork.Internet}:{OutsideNetwork.Port}"];
        var knock = await server.SpawnAsync(a.Auth.AccessToken, string.Join(' ', outOfReach.Concat(inReach)), "knock");
        (await server.WaitFinishedAsync(a.Auth.AccessToken, knock.Id)).Status.ShouldBe("completed");
        var output = Encoding.UTF8.GetString(await server.OutputAsync(a.Auth.AccessToken, knock.Id));
        foreach (var target in outOfReach)
        {
            // Refused by the wall ("no route to host"). The kernel sends at most a burst of six such ICMP answers to one
            // address before it paces them (net.ipv4.icmp_ratelimit), so a knock on many doors at once may see one time out.
            output.ShouldMatch($@"(?s).*{System.Text.RegularExpressions.Regex.Escape(target)} blocked \((EHOSTUNREACH|timeout)\).*", customMessage: output);
        }
        foreach (var target in inReach)
        {
            output.ShouldContain($"{target} OPEN", customMessage: output);
        }
    }

    [Fact]
    public async Task ATeamsNetwork_IsRemovedOnceNoContainerUsesIt_AndMadeAgainForTheNextOne()
    {
        var settings = podman.Settings();
        settings["Covibe:Containers:NetworkIdleMinutes"] = "0";
        settings["Covibe:Containers:HealthCheckIntervalSeconds"] = "1";
        var logs = new LogSink();
        await using var server = await TestServer.StartAsync(settings: settings, logs: logs);
        var owner = await server.CreateTeamAsync();
        var network = TeamNetworks.NetworkName(owner.Auth.Team.Id);
        async Task<bool> ExistsAsync() => (await podman.Client.Networks.ListNetworksAsync()).Any(n => n.Name == network);

        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "one task");
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
        // By the reconciler's next pass, which lists and checks every container on the engine: under a full run's load
        // (other tests' containers on the same Podman) a pass took most of the default 30 s.
        await Eventually.UntilAsync(ExistsAsync, exists => !exists, "the idle network is removed", TimeSpan.FromSeconds(90));
        NetworkInterface.GetAllNetworkInterfaces().Select(n => n.Name).ShouldNotContain(TeamNetworks.BridgeName(owner.Auth.Team.Id), "its bridge goes with it");
        // Said once the engine has removed it: the line may come a moment after the network is gone.
        await Eventually.UntilAsync(() => Task.FromResult(logs.Lines.Any(line => line.Contains($"Removed network {network}"))), "the removal is in the log");

        var next = await server.SpawnAsync(owner.Auth.AccessToken, "another task");
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, next.Id)).Status.ShouldBe("completed");
        Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, next.Id)).ShouldContain("another task");
    }

    /// <summary>A listener in a container of <paramref name="team"/>'s: its address on the team's network.</summary>
    private async Task<string> ListenAsync(TestServer server, CreateTeamResponse team)
    {
        var agent = await server.SpawnAsync(team.Auth.AccessToken, "listen", "listener");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(team.Auth.AccessToken, agent.Id)), o => o.Contains("listening"), "the listener listens");
        var inspect = await podman.Client.Containers.InspectContainerAsync($"covibes_agent_{team.Auth.Team.Id}_{agent.Id}");
        inspect.NetworkSettings!.Networks.Keys.ShouldBe([TeamNetworks.NetworkName(team.Auth.Team.Id)]);
        return inspect.NetworkSettings.Networks.Values.Single().IPAddress;
    }
}
