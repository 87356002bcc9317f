using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Runner VMs across nodes: a VM's runner is connected to one node (wherever the balancer sent its connection); members
/// connected to any node start agents and open terminals on it, and when its connection lands on another node, that
/// node follows its agents from then on.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed class ClusterRunnerTests(PostgresServer postgres, RedisServer redis, SshServer vm) : IClassFixture<PostgresServer>, IClassFixture<SshServer>
{
    [Fact]
    public async Task ARunnerConnectedToNodeA_RunsWhatIsStartedThroughNodeB_AndMovesToNodeBWithItsAgents()
    {
        var database = await postgres.CreateDatabaseAsync();
        var settings = RunnerTests.Settings(vm);
        foreach (var (key, value) in redis.ClusterSettings())
        {
            settings[key] = value;
        }
        settings["Covibe:Agents:LeaseSeconds"] = "4";
        AgentHelpers.AddType(settings, "ticker", ["sh", "-c", "i=0; while [ $i -lt 150 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done; echo ticked"]);
        // Small memories, so that a long output outgrows what node B holds of it.
        settings["Covibe:Agents:RingBytes"] = "65536";
        settings["Covibe:Cluster:OutputBufferBytes"] = "16384";
        await using var a = await TestServer.StartAsync(postgres: database, settings: settings);
        await using var b = await TestServer.StartAsync(postgres: database, settings: settings);
        var owner = await a.CreateTeamAsync("Runner team");
        using var onA = a.Client(owner.Auth.AccessToken);
        using var onB = b.Client(owner.Auth.AccessToken);
        var added = await RunnerTests.AddRunnerVmAsync(onA);
        // The balancer sends the runner's connection to node A.
        await using var balancer = new TcpProxy(a.Url.Port);
        await using var machine = RunnerMachine.Create(vm);
        machine.Start(["--server", balancer.Url.ToString(), "--token", added.RegistrationToken!]);
        await RunnerTests.OnlineAsync(onB, added.Id);

        // Spawned through node B: node A, where the runner is, starts it; the owner on node B types to it and reads it.
        var echo = await RunnerTests.SpawnAsync(onB, added.Id, "echo", "started through node B");
        echo.Status.ShouldNotBe("failed", echo.Error);
        echo.RunsOn.ShouldBe("runner");
        await using (var hub = await ClusterTests.JoinedAsync(b, owner.Auth.AccessToken))
        {
            await hub.SendAsync(new { type = "agent_subscribe", agentId = echo.Id, from = 0 });
            await hub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output" && AgentHelpers.Decode(m).AsSpan().IndexOf("ready"u8) >= 0, TimeSpan.FromSeconds(30));
            (await onB.PostAsJsonAsync($"/api/agent/{echo.Id}/input", new AgentInputRequest("typed on node B\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            await hub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output" && AgentHelpers.Decode(m).AsSpan().IndexOf("echo: typed on node B"u8) >= 0, TimeSpan.FromSeconds(30));
        }
        (await onB.PostAsync($"/api/agent/{echo.Id}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await b.WaitFinishedAsync(owner.Auth.AccessToken, echo.Id)).Status.ShouldBe("completed");
        (await b.OutputAsync(owner.Auth.AccessToken, echo.Id)).ShouldBe(machine.LogOf(echo.Id));

        // A terminal on the VM, opened through node B: it opens on node A (the PTY comes through the runner's connection).
        await using (var terminal = await TerminalClient.ConnectAsync(b.Url, "/terminal", owner.Auth.AccessToken))
        {
            var created = await terminal.CreateAsync("runner-shell", new { vm = added.Id, cols = 90, rows = 20 });
            created.GetProperty("info").GetProperty("host").GetString().ShouldBe(added.Name);
            await terminal.CommandAsync("runner-shell", "echo who=$(whoami) n=$((5*5))");
            await terminal.OutputUntilAsync("runner-shell", $"who={machine.User} n=25", TimeSpan.FromSeconds(30));
            await terminal.SendAsync(new { type = "session", action = "close", id = "runner-shell" });
            await terminal.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"), TimeSpan.FromSeconds(20));
        }

        // An agent started through node A; then the runner's connection drops and the balancer sends the next one to
        // node B. Node B follows the agent from then on: the owner on node B reads all of it, and it ends there.
        var ticker = await RunnerTests.SpawnAsync(onA, added.Id, "ticker");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await b.OutputAsync(owner.Auth.AccessToken, ticker.Id)),
            text => text.Contains("tick 10\n", StringComparison.Ordinal), "the ticker's first lines, read through node B");
        balancer.TargetPort = b.Url.Port;
        balancer.DropAll();
        (await b.WaitFinishedAsync(owner.Auth.AccessToken, ticker.Id, TimeSpan.FromSeconds(60))).Status.ShouldBe("completed");
        var log = machine.LogOf(ticker.Id);
        Encoding.UTF8.GetString(log).ShouldEndWith("tick 150\nticked\n");
        // The runner's last bytes may reach node B's mirror just after its "completed" (noticed: the status is not held back
        // for them); they arrive, whole and in order.
        await Eventually.UntilAsync(() => b.OutputAsync(owner.Auth.AccessToken, ticker.Id), output => output.Length >= log.Length, "the last lines through node B");
        (await b.OutputAsync(owner.Auth.AccessToken, ticker.Id)).ShouldBe(log);
        await Eventually.UntilAsync(() => a.OutputAsync(owner.Auth.AccessToken, ticker.Id), output => output.Length >= log.Length, "the last lines through node A");
        (await a.OutputAsync(owner.Auth.AccessToken, ticker.Id)).ShouldBe(log);
    

        // Output larger than node A's memory of it and the cluster's buffer, of an agent whose log is on node B's disk only
        // now (the runner is there): node A serves what it can, from where it can, and says which bytes it cannot.
        var lines = await RunnerTests.SpawnAsync(onB, added.Id, "lines");
        (await a.WaitFinishedAsync(owner.Auth.AccessToken, lines.Id)).Status.ShouldBe("completed");
        var whole = machine.LogOf(lines.Id);
        whole.Length.ShouldBeGreaterThan(65536 + 16384);
        // As above, the status may come before the last bytes reach node B's mirror (seen once on a busy run: none yet).
        await Eventually.UntilAsync(() => b.OutputAsync(owner.Auth.AccessToken, lines.Id), output => output.Length >= whole.Length, "the whole log through node B");
        (await b.OutputAsync(owner.Auth.AccessToken, lines.Id)).ShouldBe(whole, "node B reads its mirror of the log");
        using (var page = await onA.GetAsync($"/api/agent/{lines.Id}/output?from=0"))
        {
            var start = long.Parse(page.Headers.GetValues("Covibe-Output-Start").Single(), System.Globalization.CultureInfo.InvariantCulture);
            start.ShouldBeGreaterThan(0, "the first bytes are on node B's disk only");
            // The buffer drops whole entries that start more than 16 KiB before the newest one's start, so what it keeps
            // is the newest entry plus up to 16 KiB before it (a full run once kept one 10 KiB entry: the one before
            // started 32 KiB earlier).
            start.ShouldBeLessThan(whole.Length, "the cluster's buffer keeps the last of the output");
            (await page.Content.ReadAsByteArrayAsync()).ShouldBe(whole[(int)start..]);
        }
        await using var watcher = await ClusterTests.JoinedAsync(a, owner.Auth.AccessToken);
        await watcher.SendAsync(new { type = "agent_subscribe", agentId = lines.Id, from = 0 });
        var gap = await watcher.ReceiveAsync("agent_output_gap");
        gap.GetProperty("from").GetInt64().ShouldBe(0);
        var next = gap.GetProperty("to").GetInt64();
        next.ShouldBeGreaterThan(0);
        gap.GetProperty("reason").GetString()!.ShouldContain("another machine");
        var seen = new MemoryStream();
        var from = next;
        while (true)
        {
            var m = await watcher.ReceiveAsync(e => e.GetProperty("type").GetString() is "agent_output" or "agent_output_end" or "agent_output_gap");
            if (m.GetProperty("type").GetString() != "agent_output")
            {
                m.GetProperty("type").GetString().ShouldBe("agent_output_end", "one gap, then every byte to the end");
                m.GetProperty("next").GetInt64().ShouldBe(whole.Length);
                break;
            }
            m.GetProperty("position").GetInt64().ShouldBe(next, "contiguous after the gap");
            var data = AgentHelpers.Decode(m);
            seen.Write(data);
            next += data.Length;
        }
        seen.ToArray().ShouldBe(whole[(int)from..]);
    }
}
