using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>
/// Sandboxed programs reach the internet, not this machine: tried from where an attacker stands, another team's
/// agent on the server's machine, knocking on the server's own port, a service on loopback, another team's live
/// preview, this machine's own address and the cloud metadata address.
/// </summary>
public sealed class NetworkIsolationTests : IDisposable
{
    // Connects to each host:port given and says which answered; then prints the routing table it has.
    internal const string Knock = """
        const net = require('net');
        const targets = process.argv[1].split(' ');
        let left = targets.length;
        for (const t of targets) {
          const [host, port] = t.split(':');
          const s = net.connect({ host, port: Number(port), timeout: 1500 });
          const done = (what) => { console.log(`${t} ${what}`); s.destroy(); if (--left === 0) { console.log(require('fs').readFileSync('/proc/net/route', 'utf8')); } };
          s.once('connect', () => done('OPEN'));
          s.once('timeout', () => done('blocked (timeout)'));
          s.once('error', (e) => done(`blocked (${e.code})`));
        }
        """;

    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task AnotherTeamsAgent_ReachesNeitherTheServerNorLoopbackServicesNorAPreview_ButHasARouteOut()
    {
        // A service on this machine's loopback, and one on every address (as a database or a dev server might be).
        using var loopback = new TcpListener(IPAddress.Loopback, 0);
        loopback.Start();
        using var everywhere = new TcpListener(IPAddress.Any, 0);
        everywhere.Start();
        var hostAddress = NetworkInterface.GetAllNetworkInterfaces().SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address).First(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        var settings = new Dictionary<string, string>(PreviewTests.Settings);
        AgentHelpers.AddType(settings, "knock", ["node", "-e", Knock, "{task}"]);

        _repo.Commit("v1", PreviewTests.Site("team A's private app"));
        await using var server = await TestServer.StartAsync(settings: settings);
        var teamA = await server.CreateTeamAsync("A", "Ann");
        using var ann = new PreviewClient(server, teamA.Auth.AccessToken);
        await ann.ConnectAsync(_repo);
        var live = await ann.LiveAsync(_repo.Head());
        var deployPort = PortOf(server, (await ann.DeploysAsync()).First(d => d.Status == "live").Id);

        var teamB = await server.CreateTeamAsync("B", "Bob");
        var targets = string.Join(' ',
            $"127.0.0.1:{server.Url.Port}", $"127.0.0.1:{((IPEndPoint)loopback.LocalEndpoint).Port}", $"127.0.0.1:{deployPort}",
            $"{hostAddress}:{((IPEndPoint)everywhere.LocalEndpoint).Port}", $"{hostAddress}:{server.Url.Port}", "169.254.169.254:80", "10.88.0.1:80");
        var agent = await server.SpawnAsync(teamB.Auth.AccessToken, targets, type: "knock");
        await server.WaitFinishedAsync(teamB.Auth.AccessToken, agent.Id);
        var output = Encoding.UTF8.GetString(await server.OutputAsync(teamB.Auth.AccessToken, agent.Id));
        foreach (var target in targets.Split(' '))
        {
            output.ShouldContain($"{target} blocked", customMessage: output);
        }
        output.ShouldNotContain("OPEN", customMessage: output);
        // Not cut off either: a default route out through slirp4netns's tap device.
        output.ShouldMatch(@"(?m)^tap0\s+00000000\s", output);
        live.Url.ShouldNotBeNull();
    }

    [Fact]
    public async Task WithSandboxHostNetwork_TheSameKnockGetsIn_SoTheTestAboveWouldSeeALeak()
    {
        using var loopback = new TcpListener(IPAddress.Loopback, 0);
        loopback.Start();
        var settings = AgentHelpers.Settings();
        settings["Covibe:Isolation:SandboxHostNetwork"] = "true";
        AgentHelpers.AddType(settings, "knock", ["node", "-e", Knock, "{task}"]);
        await using var server = await TestServer.StartAsync(settings: settings);
        var team = await server.CreateTeamAsync();
        var target = $"127.0.0.1:{((IPEndPoint)loopback.LocalEndpoint).Port}";
        var agent = await server.SpawnAsync(team.Auth.AccessToken, target, type: "knock");
        await server.WaitFinishedAsync(team.Auth.AccessToken, agent.Id);
        Encoding.UTF8.GetString(await server.OutputAsync(team.Auth.AccessToken, agent.Id)).ShouldContain($"{target} OPEN");
    }

    private static int PortOf(TestServer server, string deployId)
    {
        using var scope = server.App.Services.CreateScope();
        var factory = scope.ServiceProvider.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<Covibe.Server.Data.CovibeDb>>();
        using var db = factory.CreateDbContext();
        return db.PreviewDeploys.Single(d => d.Id == deployId).Port!.Value;
    }

    public void Dispose() => _repo.Dispose();
}
