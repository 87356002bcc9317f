using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// A runner's agents survive what happens between it and the server: the network path cut mid-stream, the server killed
/// with SIGKILL and started again. The runner comes back on its own and the team gets every byte once.
/// </summary>
public sealed class RunnerResilienceTests(SshServer vm) : IClassFixture<SshServer>
{
    [Fact]
    public async Task ConnectionCutAndServerKilledMidStream_TheAgentRunsOn_AndTheTeamGetsEveryByteOnce()
    {
        var data = StartupTests.TempDirectory();
        var port = PostgresServer.FreePort();
        var url = $"http://127.0.0.1:{port}";
        var cli = new CliRunner(Path.Combine(data, "cli"));
        // About 8 s of output in small pieces: still running across two cuts and a restart.
        string[] args = ["serve", "--dev", "--data", data, "--urls", url, "--Covibe:Auth:PasswordIterations=100000",
            "--Covibe:Agents:Types:ticks:Command:0=sh", "--Covibe:Agents:Types:ticks:Command:1=-c",
            "--Covibe:Agents:Types:ticks:Command:2=i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo tick $i; sleep 0.02; done"];
        var server = cli.Start(args);
        await using var proxy = new TcpProxy(port);
        await using var machine = RunnerMachine.Create(vm);
        Process? restarted = null;
        try
        {
            await AgentRestartTests.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var created = (await (await http.PostAsJsonAsync("/api/team/create", new CreateTeamRequest("R", "Rae", "rae@example.com", TestServer.Password))).Content.ReadFromJsonAsync<CreateTeamResponse>())!;
            http.DefaultRequestHeaders.Authorization = new("Bearer", created.Auth.AccessToken);
            var added = await RunnerTests.AddRunnerVmAsync(http);
            // The runner reaches the server only through the proxy, whose connections the test cuts.
            machine.Start(["--server", proxy.Url.ToString(), "--token", added.RegistrationToken!]);
            await RunnerTests.OnlineAsync(http, added.Id);
            var agent = await RunnerTests.SpawnAsync(http, added.Id, "ticks");

            await Eventually.UntilAsync(() => Task.FromResult(ReadLog(machine, agent.Id).Length), n => n > 500, "the agent writes");
            proxy.DropAll();
            await Task.Delay(1200);
            proxy.DropAll();
            await Eventually.UntilAsync(async () => (await http.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single().Status, s => s == "online", "the runner is back after the cuts", TimeSpan.FromSeconds(30));

            server.Kill(); // SIGKILL: no shutdown code runs
            await server.WaitForExitAsync();
            await Task.Delay(1000);
            // (A runner VM holds no sealed SSH credential: the start-up check of stored secrets must not trip over it.)
            restarted = cli.Start(args);
            await AgentRestartTests.WaitHealthyAsync(url);

            var finished = await Eventually.UntilAsync(() => http.GetFromJsonAsync<AgentDto>($"/api/agent/{agent.Id}")!, a => AgentStatuses.IsFinal(a!.Status),
                "the agent finishes, followed through the runner again", TimeSpan.FromSeconds(90));
            finished!.Status.ShouldBe("completed", finished.Error);
            var log = machine.LogOf(agent.Id);
            Encoding.UTF8.GetString(log).ShouldEndWith("tick 400\n");
            // Every byte once, in order: over REST and from position 0 over the hub.
            (await http.OutputAsync(agent.Id)).ShouldBe(log);
            await using var hub = await HubClient.ConnectAsync(new Uri(url), created.Auth.AccessToken);
            await hub.ReceiveAsync("team_joined");
            await hub.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
            var (bytes, _, status) = await hub.CollectOutputAsync(agent.Id);
            status.ShouldBe("completed");
            bytes.ShouldBe(log);
            machine.Output.ShouldContain("reconnecting");
        }
        finally
        {
            foreach (var process in new[] { server, restarted })
            {
                if (process is { HasExited: false })
                {
                    process.Kill();
                    await process.WaitForExitAsync();
                }
                process?.Dispose();
            }
            StartupTests.Delete(data);
        }
    }

    [Fact]
    public async Task RunnerKilledMidStreamAndStartedAgain_PicksItsAgentsUpWhereTheServerIs()
    {
        var settings = RunnerTests.Settings(vm);
        AgentHelpers.AddType(settings, "ticks", ["sh", "-c", "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo tick $i; sleep 0.01; done"]);
        await using var setup = await RunnerSetup.StartAsync(vm, settings);
        var (server, owner, client, added, machine) = setup;
        var agent = await RunnerTests.SpawnAsync(client, added.Id, "ticks");
        await Eventually.UntilAsync(() => Task.FromResult(ReadLog(machine, agent.Id).Length), n => n > 300, "the agent writes");

        await machine.KillAsync();
        await Task.Delay(500);
        machine.Start(); // its saved registration: no token this time
        var finished = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        finished.Status.ShouldBe("completed", finished.Error);
        (await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).ShouldBe(machine.LogOf(agent.Id));
    }

    [Fact]
    public async Task RunnerSilentPastItsLease_ItsAgentsShowLostWithTheReason_ButShortDropsCostNothing()
    {
        var settings = RunnerTests.Settings(vm);
        settings["Covibe:Runners:LeaseSeconds"] = "10";
        settings["Covibe:Runners:HeartbeatSeconds"] = "1";
        AgentHelpers.AddType(settings, "long", ["sh", "-c", "echo started; sleep 60"]);
        await using var setup = await RunnerSetup.StartAsync(vm, settings);
        var (server, owner, client, added, machine) = setup;
        var agent = await RunnerTests.SpawnAsync(client, added.Id, "long");
        await Eventually.UntilAsync(() => server.GetAgentAsync(owner.Auth.AccessToken, agent.Id), a => a.Status == "running", "the agent runs");
        // Connected for longer than its lease (10 s): only its heartbeats (every second) keep renewing it.
        await Task.Delay(TimeSpan.FromSeconds(11));

        // The runner's machine loses power: the socket closing alone decides nothing...
        await machine.KillAsync();
        var offline = await Eventually.UntilAsync(async () => (await client.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single(), v => v.Status == "offline", "the VM shows offline");
        offline.LastError!.ShouldContain("keep running");
        (await server.GetAgentAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("running");
        // ...its lease does: past it, the agent counts as lost, saying why.
        var lost = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30));
        lost.Status.ShouldBe("lost");
        lost.Error!.ShouldContain("lease");
        // On the VM it ran on regardless (detached from the runner).
        AgentHelpers.ProcessesOf(agent.Id).ShouldNotBeEmpty();
    }

    private static byte[] ReadLog(RunnerMachine machine, string agentId)
    {
        try
        {
            return machine.LogOf(agentId);
        }
        catch (IOException)
        {
            return [];
        }
    }
}
