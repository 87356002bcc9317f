using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// A team's egress policy, enforced where its code runs on this machine (a sandboxed agent, a container agent, an
/// agent in a box), tried from inside: through the proxy an allowed host name answers and another is refused, a direct
/// connection to an address is refused, each refusal is told to the team, and a change holds for the next process at
/// once. "The internet" is a network namespace standing in for it (<see cref="OutsideNetwork"/>), its names given to
/// the proxy by the operator's <c>Covibe:Egress:Resolve</c>.
/// </summary>
[Collection(PodmanGroup.Name)]
public sealed class EgressTests(PodmanService podman) : IDisposable
{
    // For each "proxy=host:port" asks the proxy of HTTPS_PROXY for a tunnel; for each "direct=ip:port" connects itself.
    private const string Probe = """
        const net = require('net');
        const proxy = process.env.HTTPS_PROXY ? new URL(process.env.HTTPS_PROXY) : null;
        function attempt(how, target) { return new Promise(done => {
          const [host, port] = how === 'proxy' ? [proxy ? proxy.hostname : '0.0.0.0', proxy ? Number(proxy.port) : 9] : target.split(':');
          const s = net.connect({ host, port: Number(port), timeout: 4000 });
          let got = '';
          const end = (what) => { done(`${how} ${target} ${what}`); s.destroy(); };
          s.on('connect', () => how === 'proxy' ? s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`) : null);
          s.on('data', d => { got += d;
            if (got.includes('hello from')) end('ANSWERED ' + got.slice(got.indexOf('hello from')).trim());
            else if (/^HTTP\/1\.1 [45]\d\d/.test(got) && got.includes('\r\n\r\n')) end('REFUSED ' + got.split('\r\n')[0] + ' ' + got.split('\r\n\r\n')[1].trim()); });
          s.on('timeout', () => end('BLOCKED timeout'));
          s.on('error', e => end('BLOCKED ' + e.code));
          s.on('close', () => end('CLOSED ' + JSON.stringify(got)));
        }); }
        (async () => { for (const t of process.argv[process.argv.length - 1].split(' ')) { const i = t.indexOf('='); console.log(await attempt(t.slice(0, i), t.slice(i + 1))); } })();
        """;

    private static readonly string Targets = $"proxy=internet.test:{OutsideNetwork.Port} proxy=elsewhere.test:{OutsideNetwork.Port} " +
        $"proxy=localhost:{OutsideNetwork.Port} direct={OutsideNetwork.Internet}:{OutsideNetwork.Port}";

    private readonly GitRepo _repo = GitRepo.Create();

    private static Dictionary<string, string> WithEgress(Dictionary<string, string> settings)
    {
        settings["Covibe:Egress:Resolve:internet.test"] = OutsideNetwork.Internet;
        settings["Covibe:Egress:Resolve:elsewhere.test"] = OutsideNetwork.Internet;
        AgentHelpers.AddType(settings, "probe", ["node", "-e", Probe, "{task}"]);
        return settings;
    }

    [Fact]
    public async Task SandboxedAgent_ReachesAnAllowedNameThroughTheProxy_IsRefusedAnotherAndADirectConnection_AndTheTeamIsTold()
    {
        await using var outside = await OutsideNetwork.StartAsync();
        await using var server = await TestServer.StartAsync(settings: WithEgress(AgentHelpers.Settings()));
        var owner = await server.CreateTeamAsync();
        await AllowlistAndProbeAsync(server, owner, null);

        // A terminal of the team is held to it too (none now): its shell can connect nowhere, the proxy included.
        await using var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken);
        await terminal.ReceiveAsync("ready");
        await terminal.CreateAsync("walled", new { shell = "/bin/sh" });
        await File.WriteAllTextAsync(Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id, "probe.js"), Probe);
        await terminal.InputAsync("walled", $"echo proxy=$HTTPS_PROXY; node /workspace/probe.js '{Targets}'\n");
        var seen = await terminal.OutputUntilAsync("walled", $"direct {OutsideNetwork.Internet}:{OutsideNetwork.Port} BLOCKED");
        seen.ShouldContain("proxy=http://10.0.2.2:");
        seen.ShouldContain($"proxy internet.test:{OutsideNetwork.Port} BLOCKED EHOSTUNREACH");
        seen.ShouldNotContain("ANSWERED");
    }

    [Fact]
    public async Task ContainerAgent_ReachesAnAllowedNameThroughTheProxy_IsRefusedAnotherAndADirectConnection_AndTheTeamIsTold()
    {
        await using var outside = await OutsideNetwork.StartAsync();
        await using var server = await TestServer.StartAsync(settings: WithEgress(podman.Settings()));
        var owner = await server.CreateTeamAsync();
        await AllowlistAndProbeAsync(server, owner, null, method: "docker");
    }

    [Fact]
    public async Task AgentInABox_ReachesAnAllowedNameThroughTheProxy_IsRefusedAnotherAndADirectConnection_AndTheTeamIsTold()
    {
        await using var outside = await OutsideNetwork.StartAsync();
        _repo.Commit("first", new() { ["README.md"] = "hello\n" });
        await using var server = await TestServer.StartAsync(settings: WithEgress(BoxClient.Settings(podman)));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        var (_, requested) = await sarah.RequestAsync(_repo);
        var box = await sarah.SettledAsync(requested.Id);
        box.Status.ShouldBe("ready", await sarah.LogAsync(box.Id));
        await AllowlistAndProbeAsync(server, owner, box.Id, method: "box");
    }

    [Fact]
    public async Task ARunningContainerAgent_IsHeldToAChangedPolicyAtOnce()
    {
        await using var outside = await OutsideNetwork.StartAsync();
        var settings = podman.Settings();
        // Connects straight to the "internet" every half second and says how it went.
        AgentHelpers.AddType(settings, "keep-trying", ["node", "-e",
            "setInterval(() => { const s = require('net').connect({ host: process.argv[1], port: 7000, timeout: 2000 });" +
            " s.on('data', () => { console.log('ANSWERED'); s.destroy(); }); s.on('error', e => console.log('BLOCKED ' + e.code)); s.on('timeout', () => { console.log('BLOCKED timeout'); s.destroy(); }); }, 500)",
            "{task}"]);
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, OutsideNetwork.Internet, "keep-trying");
        async Task<string> OutputAsync() => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        await Eventually.UntilAsync(OutputAsync, o => o.Contains("ANSWERED"), "the open team's agent gets through");

        (await client.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("none", null))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var before = (await OutputAsync()).Length;
        await Eventually.UntilAsync(OutputAsync, o => o[before..].Contains("BLOCKED EHOSTUNREACH"), "the same running agent is refused from now on");
        var refused = (await OutputAsync()).Length;
        await Eventually.UntilAsync(OutputAsync, o => o[refused..].Split('\n').Count(l => l.StartsWith("BLOCKED", StringComparison.Ordinal)) >= 3, "three attempts more");
        (await OutputAsync())[refused..].ShouldNotContain("ANSWERED");
        (await client.DeleteAsync($"/api/agent/{agent.Id}")).IsSuccessStatusCode.ShouldBeTrue();
    }

    /// <summary>Open first (the probe gets through directly), then an allowlist of one name, then none: each holds for the next agent.</summary>
    private static async Task AllowlistAndProbeAsync(TestServer server, CreateTeamResponse owner, string? boxId, string method = "local")
    {
        using var client = server.Client(owner.Auth.AccessToken);
        var open = await ProbeAsync(client, server, owner, boxId, method);
        open.ShouldContain($"direct {OutsideNetwork.Internet}:{OutsideNetwork.Port} ANSWERED hello from {OutsideNetwork.Internet}", customMessage: open);

        var set = await client.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("allowlist", ["internet.test", "registry.npmjs.org", "localhost"]));
        set.StatusCode.ShouldBe(HttpStatusCode.OK, await set.Content.ReadAsStringAsync());
        var allowlisted = await ProbeAsync(client, server, owner, boxId, method);
        allowlisted.ShouldContain($"proxy internet.test:{OutsideNetwork.Port} ANSWERED hello from {OutsideNetwork.Internet}", customMessage: allowlisted);
        allowlisted.ShouldContain($"proxy elsewhere.test:{OutsideNetwork.Port} REFUSED HTTP/1.1 403 Forbidden blocked: elsewhere.test:{OutsideNetwork.Port} by the team's egress policy", customMessage: allowlisted);
        allowlisted.ShouldContain($"direct {OutsideNetwork.Internet}:{OutsideNetwork.Port} BLOCKED EHOSTUNREACH", customMessage: allowlisted);
        // An allowed name that resolves to this machine (or a private network the team did not list) is no way in.
        allowlisted.ShouldContain($"proxy localhost:{OutsideNetwork.Port} REFUSED HTTP/1.1 403 Forbidden blocked: localhost is on this machine", customMessage: allowlisted);
        // Both refusals are told to the team: the name asked of the proxy, and the address connected to directly.
        var policy = await Eventually.UntilAsync(async () => (await client.GetFromJsonAsync<EgressPolicyResponse>("/api/team/egress"))!,
            p => p.Blocked.Any(b => b.How == "direct"), "the direct connection's refusal is told");
        policy.Mode.ShouldBe("allowlist");
        policy.Blocked.ShouldContain(b => b.Host == "elsewhere.test" && b.Port == OutsideNetwork.Port && b.How == "proxy");
        policy.Blocked.Single(b => b.How == "direct").Message.ShouldStartWith($"blocked: {OutsideNetwork.Internet}:{OutsideNetwork.Port} by the team's egress policy");

        (await client.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("none", null))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var none = await ProbeAsync(client, server, owner, boxId, method);
        none.ShouldNotContain("ANSWERED", customMessage: none);
        none.ShouldContain($"direct {OutsideNetwork.Internet}:{OutsideNetwork.Port} BLOCKED EHOSTUNREACH", customMessage: none);
    }

    private static async Task<string> ProbeAsync(HttpClient client, TestServer server, CreateTeamResponse owner, string? boxId, string method)
    {
        using var reply = await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest(Targets, "probe", BoxId: boxId));
        reply.StatusCode.ShouldBe(HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        var spawned = (await reply.Content.ReadFromJsonAsync<SpawnAgentResponse>())!;
        spawned.Method.ShouldBe(method);
        var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, spawned.Agent.Id);
        var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, spawned.Agent.Id));
        done.Status.ShouldBe("completed", output);
        return output;
    }

    public void Dispose() => _repo.Dispose();
}
