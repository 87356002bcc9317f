using Covibe.Server.Features.Containers;
using Covibe.Execution.Containers;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;
using Docker.DotNet.Models;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>Seed 003's agent containers, against a real Podman serving the Docker Engine API.</summary>
[Collection(PodmanGroup.Name)]
public sealed class ContainerTests(PodmanService podman)
{
    [Fact]
    public async Task Spawn_WithContainersOn_RunsTheAgentInItsOwnLabelledLimitedContainer_OnTheTeamsWorkspace()
    {
        var settings = podman.Settings();
        settings["Covibe:Agents:Types:inside:Command:0"] = "sh";
        settings["Covibe:Agents:Types:inside:Command:1"] = "-c";
        settings["Covibe:Agents:Types:inside:Command:2"] =
            "echo uid=$(id -u) at=$(pwd); echo memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max); " +
            "echo shared > /workspace/from-agent.txt; ls /covibe; sleep 2";
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);

        using var reply = await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("look inside", "inside"));
        reply.StatusCode.ShouldBe(HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        var spawned = (await reply.Content.ReadFromJsonAsync<SpawnAgentResponse>())!;
        spawned.Method.ShouldBe("docker");
        spawned.Fallback.ShouldBeNull();
        var agent = spawned.Agent;

        // Seed 003's name, and our labels: whose it is, for the team and for reconciling.
        var name = $"covibes_agent_{owner.Auth.Team.Id}_{agent.Id}";
        var container = await Eventually.UntilAsync(
            async () => (await podman.ListAsync()).FirstOrDefault(c => c.Names.Contains("/" + name)),
            c => c is not null, "the agent's container exists");
        container!.Labels["covibe.team"].ShouldBe(owner.Auth.Team.Id);
        container.Labels["covibe.agent"].ShouldBe(agent.Id);
        container.Labels["covibe.owner"].ShouldBe(owner.Auth.User.Id);
        var inspect = await podman.Client.Containers.InspectContainerAsync(name);
        inspect.HostConfig!.Memory.ShouldBe(2L * 1024 * 1024 * 1024);
        inspect.HostConfig.NanoCPUs.ShouldBe(1_000_000_000);
        inspect.HostConfig.Binds.ShouldNotContain(b => b.Contains(".sock", StringComparison.Ordinal));

        var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.Status.ShouldBe("completed");
        var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        output.ShouldContain($"uid=10001 at=/workspace/{agent.Id}");
        output.ShouldContain("memory=2147483648"); // seed 003's 2g, seen from inside
        File.ReadAllText(Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id, "from-agent.txt")).ShouldBe("shared\n");
        // A finished agent's container is removed; its output stays with the server.
        await Eventually.UntilAsync(
            async () => (await podman.ListAsync()).Any(c => c.Names.Contains("/" + name)),
            exists => !exists, "the finished agent's container is removed");
    }

    [Fact]
    public async Task MockAgent_InAContainer_StreamsToTheTeam_TakesInput_AndIsKilledByItsOwner()
    {
        await using var server = await TestServer.StartAsync(settings: podman.Settings());
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        var mock = await server.SpawnAsync(owner.Auth.AccessToken, "Containerised", "mock");
        await using var hub = await server.ConnectAsync(member.AccessToken);
        await hub.ReceiveAsync("team_joined");
        await hub.SendAsync(new { type = "agent_subscribe", agentId = mock.Id, from = 0 });
        var (bytes, _, status) = await hub.CollectOutputAsync(mock.Id, from: 0);
        status.ShouldBe("completed");
        Encoding.UTF8.GetString(bytes).ShouldContain("Containerised");

        var echo = await server.SpawnAsync(owner.Auth.AccessToken, "echo", "echo");
        using var client = server.Client(owner.Auth.AccessToken);
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, echo.Id)), o => o.Contains("ready", StringComparison.Ordinal), "the echo agent is ready");
        (await client.PostAsJsonAsync($"/api/agent/{echo.Id}/input", new AgentInputRequest("from the owner\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, echo.Id)), o => o.Contains("echo: from the owner", StringComparison.Ordinal), "the input is echoed");
        using var teammate = server.Client(member.AccessToken);
        (await teammate.DeleteAsync($"/api/agent/{echo.Id}")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await client.DeleteAsync($"/api/agent/{echo.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, echo.Id)).Status.ShouldBe("killed");
    }

    [Fact]
    public async Task TheEngineStoppingWhileTheServerRuns_SendsTheNextAgentToTheFallbackOrA503_NeverA500_AndContainersComeBack()
    {
        // The engine's answer is trusted for ten minutes here: only a call that finds it gone can tell the server.
        var settings = podman.Settings();
        settings["Covibe:Containers:EngineCheckSeconds"] = "600";
        settings["Covibe:Agents:SpawnsPerMinute"] = "1000";
        var logs = new LogSink();
        await using var server = await TestServer.StartAsync(settings: settings, logs: logs);
        var strict = new Dictionary<string, string>(settings) { ["Covibe:Containers:Fallback"] = "none" };
        AgentHelpers.AddType(strict, "sleeper", ["sh", "-c", "echo sleeping; exec sleep 120"]);
        await using var strictServer = await TestServer.StartAsync(settings: strict);
        var owner = await server.CreateTeamAsync();
        var strictOwner = await strictServer.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        using var strictClient = strictServer.Client(strictOwner.Auth.AccessToken);
        async Task<HttpResponseMessage> SpawnAsync(HttpClient http, string task) => await http.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest(task, "mock"));
        (await (await SpawnAsync(client, "before")).Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Method.ShouldBe("docker");
        (await (await SpawnAsync(strictClient, "before")).Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Method.ShouldBe("docker");
        var sleeper = (await (await strictClient.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("sleep", "sleeper"))).Content.ReadFromJsonAsync<SpawnAgentResponse>())!;
        sleeper.Method.ShouldBe("docker");
        await Eventually.UntilAsync(async () => System.Text.Encoding.UTF8.GetString(await strictClient.OutputAsync(sleeper.Agent.Id)),
            output => output.Contains("sleeping"), "the agent runs in its container");

        await podman.StopServiceAsync();
        try
        {
            // The spawn finds the engine gone, marks it down, and runs the agent on the fallback, saying why.
            using var reply = await SpawnAsync(client, "while the engine is away");
            reply.StatusCode.ShouldBe(HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
            var spawned = (await reply.Content.ReadFromJsonAsync<SpawnAgentResponse>())!;
            spawned.Method.ShouldBe("local");
            spawned.Fallback!.ShouldContain("does not answer");
            var finished = await server.WaitFinishedAsync(owner.Auth.AccessToken, spawned.Agent.Id);
            finished.Status.ShouldBe("completed", finished.Error);
            // Marked down at once: the environment says so, and so does the next spawn, without calling the engine.
            using var environment = await client.GetAsync("/api/team/environment");
            (await environment.Content.ReadAsStringAsync()).ShouldContain("does not answer");
            var health = (await client.GetFromJsonAsync<HealthResponse>("/health"))!;
            (health.Status, health.Engine).ShouldBe(("degraded", "unavailable"));
            logs.Lines.Count(line => line.Contains("The container engine stopped answering")).ShouldBe(1, "said once, when the spawn found it gone");

            // With no fallback allowed: a terminal says why it did not open (and tells the server the engine is down),
            // then a spawn is refused with 503, and no agent is left behind.
            await using (var terminal = await TerminalClient.ConnectAsync(strictServer.Url, "/terminal", strictOwner.Auth.AccessToken))
            {
                await terminal.ReceiveAsync("ready");
                await terminal.SendAsync(new { type = "session", action = "create", id = "while-away", config = new { shell = "/bin/sh" } });
                (await terminal.ErrorAsync("COMMAND_FAILED")).GetProperty("error").GetString()!.ShouldContain("does not answer");
            }
            var problem = await (await SpawnAsync(strictClient, "refused")).ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable, "container-engine-unavailable");
            problem.GetProperty("detail").GetString()!.ShouldContain("does not answer");
            (await strictClient.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.Select(a => a.Task).Order().ShouldBe(["before", "sleep"]);
            // The running agent's owner is told its kill did not reach it; it is still running, and still hers to kill.
            (await (await strictClient.DeleteAsync($"/api/agent/{sleeper.Agent.Id}")).ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable, "container-engine-unavailable"))
                .GetProperty("detail").GetString()!.ShouldContain("not carried out");
        }
        finally
        {
            await podman.RestartServiceAsync();
        }
        // Back: agents go to containers again.
        await Eventually.UntilAsync(async () => (await (await SpawnAsync(client, "after")).Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Method,
            method => method == "docker", "agents run in containers again once the engine answers");
        var back = (await client.GetFromJsonAsync<HealthResponse>("/health"))!;
        (back.Status, back.Engine).ShouldBe(("running", "ok"));
        logs.Lines.ShouldContain(line => line.Contains("The container engine answers again"));
        (await strictClient.GetFromJsonAsync<AgentDto>($"/api/agent/{sleeper.Agent.Id}"))!.Status.ShouldBe("running", "the kill that did not reach it was not carried out later either");
        using var killed = await strictClient.DeleteAsync($"/api/agent/{sleeper.Agent.Id}");
        killed.StatusCode.ShouldBe(HttpStatusCode.Accepted, "the kill goes through once the engine answers: " + await killed.Content.ReadAsStringAsync());
        (await strictServer.WaitFinishedAsync(strictOwner.Auth.AccessToken, sleeper.Agent.Id)).Status.ShouldBe("killed");
    }

    [Fact]
    public async Task EngineDown_FallsBackToTheSandboxSayingWhy_OrRefusesWhenNoFallbackIsAllowed()
    {
        var settings = podman.Settings();
        settings["Covibe:Containers:Host"] = "unix:///nonexistent/podman.sock";
        await using (var server = await TestServer.StartAsync(settings: settings))
        {
            var owner = await server.CreateTeamAsync();
            using var client = server.Client(owner.Auth.AccessToken);
            using var reply = await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("fallback", "mock"));
            reply.StatusCode.ShouldBe(HttpStatusCode.Created);
            var spawned = (await reply.Content.ReadFromJsonAsync<SpawnAgentResponse>())!;
            spawned.Method.ShouldBe("local");
            spawned.Fallback!.ShouldContain("does not answer");
            (await server.WaitFinishedAsync(owner.Auth.AccessToken, spawned.Agent.Id)).Status.ShouldBe("completed");
        }

        settings["Covibe:Containers:Fallback"] = "none";
        await using (var server = await TestServer.StartAsync(settings: settings))
        {
            var owner = await server.CreateTeamAsync();
            using var client = server.Client(owner.Auth.AccessToken);
            var problem = await (await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("refused", "mock")))
                .ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable, "container-engine-unavailable");
            problem.GetProperty("detail").GetString()!.ShouldContain("Covibe:Containers:Fallback=none");
            // Nothing half-made: no agent was recorded.
            (await client.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.ShouldBeEmpty();
        }
    }

    [Fact]
    public async Task MissingImage_IsAClearErrorNamingCovibeImageBuild()
    {
        var settings = podman.Settings();
        settings["Covibe:Containers:Image"] = "covibe-agent:never-built";
        settings["Covibe:Containers:Fallback"] = "none";
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var problem = await (await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("no image", "mock")))
            .ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable, "container-engine-unavailable");
        problem.GetProperty("detail").GetString()!.ShouldContain("covibe image build");
    }

    [Fact]
    public async Task Terminals_RunInTheTeamsContainer_Resize_Reattach_AndSeeOnlyTheirTeamsWorkspace()
    {
        await using var server = await TestServer.StartAsync(settings: podman.Settings());
        var (owner, member) = await server.CreateTeamWithMemberAsync("Boxed");
        var stranger = await server.CreateTeamAsync("Elsewhere", "Chen");

        await using var sarah = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken);
        await sarah.ReceiveAsync("ready");
        // The team's first terminal starts its workspace container: on a busy 2-core machine that may take more than 10 s.
        await sarah.CreateAsync("boxed", new { shell = "/bin/sh", cols = 100, rows = 30 }, TimeSpan.FromSeconds(60));
        // The file first: once the line shows, the file is there.
        await sarah.CommandAsync("boxed", "echo team-note > note.txt; echo who=$(id -u) at=$(pwd) mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)");
        await sarah.OutputUntilAsync("boxed", "who=10001 at=/workspace mem=2147483648");
        File.ReadAllText(Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id, "note.txt")).ShouldBe("team-note\n");
        var box = await podman.Client.Containers.InspectContainerAsync($"covibes_sync_{owner.Auth.Team.Id}");
        box.Config!.Labels["covibe.team"].ShouldBe(owner.Auth.Team.Id);
        box.NetworkSettings!.Networks.Keys.ShouldBe([TeamNetworks.NetworkName(owner.Auth.Team.Id)], "the team's own network");
        box.HostConfig!.Binds.ShouldHaveSingleItem().ShouldStartWith($"{Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id)}:/workspace:rw");

        // Resize reaches the program; a dropped client reattaches to the same shell.
        await sarah.SendAsync(new { type = "session", action = "resize", id = "boxed", config = new { cols = 132, rows = 43 } });
        await sarah.ReceiveAsync(m => TerminalClient.Is(m, "session", "resized"));
        await sarah.CommandAsync("boxed", "stty size");
        await sarah.OutputUntilAsync("boxed", "43 132");
        await using (var again = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken))
        {
            await again.ReceiveAsync("ready");
            await again.SendAsync(new { type = "session", action = "attach", id = "boxed" });
            await again.OutputUntilAsync("boxed", "43 132");
        }

        // Shared with the team: a teammate watches the container's shell, read-only.
        await sarah.SendAsync(new { type = "session", action = "share", id = "boxed" });
        await sarah.ReceiveAsync(m => TerminalClient.Is(m, "session", "shared"));
        await using (var miguel = await TerminalClient.ConnectAsync(server.Url, "/terminal", member.AccessToken))
        {
            await miguel.ReceiveAsync("ready");
            await miguel.SendAsync(new { type = "session", action = "attach", id = "boxed" });
            (await miguel.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"))).GetProperty("read_only").GetBoolean().ShouldBeTrue();
            await miguel.OutputUntilAsync("boxed", "43 132");
            await miguel.InputAsync("boxed", "echo typed-by-a-watcher\r");
            await miguel.ErrorAsync("FORBIDDEN");
        }

        // Another team's terminal is another container: the first team's files are not there.
        await using var chen = await TerminalClient.ConnectAsync(server.Url, "/terminal", stranger.Auth.AccessToken);
        await chen.ReceiveAsync("ready");
        await chen.CreateAsync("other", new { shell = "/bin/sh" }, TimeSpan.FromSeconds(60));
        await chen.CommandAsync("other", $"cat /workspace/note.txt; ls /workspace/../{owner.Auth.Team.Id}; cat /proc/1/environ | tr '\\0' ' '; echo probe-$((40+2))");
        var seen = await chen.OutputUntilAsync("other", "probe-42");
        seen.ShouldNotContain("team-note");
        seen.ShouldNotContain("JWT");

        await sarah.SendAsync(new { type = "session", action = "close", id = "boxed" });
        await sarah.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"));
    }

    [Fact]
    public async Task Environment_ListsTheTeamsContainers_AndTheReconcilerMarksVanishedOnesAndRemovesOrphans()
    {
        var settings = podman.Settings();
        settings["Covibe:Containers:OrphanGraceSeconds"] = "0";
        settings["Covibe:Agents:Types:sleeper:Command:0"] = "sh";
        settings["Covibe:Agents:Types:sleeper:Command:1"] = "-c";
        settings["Covibe:Agents:Types:sleeper:Command:2"] = "echo sleeping; sleep 600";
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync("Env");
        var other = await server.CreateTeamAsync("Other env", "Chen");
        using var client = server.Client(owner.Auth.AccessToken);

        var sleeper = await server.SpawnAsync(owner.Auth.AccessToken, "sleep", "sleeper");
        var name = $"covibes_agent_{owner.Auth.Team.Id}_{sleeper.Id}";
        var reconciler = server.App.Services.GetRequiredService<Covibe.Server.Features.Containers.ContainerReconciler>();
        // Health comes from the periodic pass (every 30 s): run one, as the timer would.
        var env = await Eventually.UntilAsync(async () =>
            {
                await reconciler.ReconcileAsync(CancellationToken.None);
                return await client.GetFromJsonAsync<TeamEnvironmentResponse>("/api/team/environment");
            },
            e => e!.Containers.Any(c => c.Name == name && c.Health == "healthy"), "the agent's container shows healthy");
        env!.UsesContainers.ShouldBeTrue();
        env.Engine.ShouldBe("ok");
        var row = env.Containers.Single(c => c.Name == name);
        row.Type.ShouldBe("agent");
        row.Status.ShouldBe("running");
        row.AgentId.ShouldBe(sleeper.Id);
        row.Limits!.MemoryBytes.ShouldBe(2L * 1024 * 1024 * 1024);
        row.Limits.Cpus.ShouldBe(1.0);
        row.Started.ShouldNotBeNull();
        (await server.Client(other.Auth.AccessToken).GetFromJsonAsync<TeamEnvironmentResponse>("/api/team/environment"))!.Containers.ShouldBeEmpty();

        // Someone removes the team's workspace container behind Covibe's back: its row says it is missing.
        await using (var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken))
        {
            await terminal.ReceiveAsync("ready");
            await terminal.CreateAsync("shell", new { shell = "/bin/sh" });
        }
        var sync = $"covibes_sync_{owner.Auth.Team.Id}";
        await podman.Client.Containers.RemoveContainerAsync(sync, new ContainerRemoveParameters { Force = true });
        env = await client.GetFromJsonAsync<TeamEnvironmentResponse>("/api/team/environment");
        env!.Containers.Single(c => c.Name == sync).Status.ShouldBe("missing");
        // And the agent's: the agent ends (not "running" forever) and its container is no longer shown running.
        await podman.Client.Containers.RemoveContainerAsync(name, new ContainerRemoveParameters { Force = true });
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, sleeper.Id)).Status.ShouldBeOneOf("lost", "failed");
        env = await client.GetFromJsonAsync<TeamEnvironmentResponse>("/api/team/environment");
        env!.Containers.ShouldNotContain(c => c.Name == name && c.Status == "running");

        // A container labelled as ours that the database does not know (a restored backup, a crash) is removed.
        var orphan = $"covibes_agent_{owner.Auth.Team.Id}_orphan";
        await podman.Client.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Name = orphan,
            Image = PodmanService.Image,
            Cmd = ["sleep", "600"],
            Labels = new Dictionary<string, string> { ["covibe.managed"] = "true", ["covibe.team"] = owner.Auth.Team.Id },
        });
        await podman.Client.Containers.StartContainerAsync(orphan, new ContainerStartParameters());
        var report = await reconciler.ReconcileAsync(CancellationToken.None);
        report.OrphansRemoved.ShouldContain(orphan);
        (await podman.ListAsync()).ShouldNotContain(c => c.Names.Contains("/" + orphan));
    }

    [Fact]
    public async Task TeamFlag_TurnsContainersOffForOneTeam_FromTheOperatorsCommand()
    {
        var data = StartupTests.TempDirectory();
        try
        {
            await using var server = await TestServer.StartAsync(settings: podman.Settings(), dataDirectory: data);
            var rolledBack = await server.CreateTeamAsync("Rolled back");
            var stays = await server.CreateTeamAsync("Stays", "Chen");
            var cli = new CliRunner(Path.Combine(data, "operator"));
            var off = await cli.RunAsync(null, "containers", "team", rolledBack.Auth.Team.Id, "off", "--data", data,
                $"--Covibe:Auth:JwtSecret={TestServer.JwtSecret}", $"--Covibe:Secrets:EncryptionKey={TestServer.EncryptionKey}");
            off.ExitCode.ShouldBe(0, off.Stderr);
            off.Stdout.ShouldContain("containers off");

            async Task<string> MethodAsync(CreateTeamResponse team)
            {
                using var client = server.Client(team.Auth.AccessToken);
                using var reply = await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("where", "mock"));
                return (await reply.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Method;
            }
            (await MethodAsync(rolledBack)).ShouldBe("local");
            (await MethodAsync(stays)).ShouldBe("docker");
        }
        finally
        {
            StartupTests.Delete(data);
        }
    }

    [Fact]
    public async Task ServerRestart_MidStream_WithContainersSwitchedOff_TheContainerKeepsRunning_AndTheClientResumesWithNoGap()
    {
        var data = StartupTests.TempDirectory();
        // An agent that runs until the test lets it end, so it still runs after the restart however busy the machine is.
        var gated = AgentHelpers.Settings();
        gated["Covibe:Agents:Types:gated:Command:0"] = "sh";
        gated["Covibe:Agents:Types:gated:Command:1"] = "-c";
        gated["Covibe:Agents:Types:gated:Command:2"] = AgentRestartTests.GatedAgent;
        var settings = podman.Settings(gated);
        try
        {
            string agentId, token, name;
            byte[] before;
            long next;
            await using (var first = await TestServer.StartAsync(settings: settings, dataDirectory: data))
            {
                var owner = await first.CreateTeamAsync();
                token = owner.Auth.AccessToken;
                agentId = (await first.SpawnAsync(token, "Survive a restart in a box", "gated")).Id;
                name = $"covibes_agent_{owner.Auth.Team.Id}_{agentId}";
                await using var hub = await first.ConnectAsync(token);
                await hub.ReceiveAsync("team_joined");
                await hub.SendAsync(new { type = "agent_subscribe", agentId, from = 0 });
                (before, next) = await AgentRestartTests.ReadSomeAsync(hub, agentId, minimum: 1500);
            }

            // The server is gone; the engine keeps the agent running. It comes back with containers
            // switched off (seed 003's rollback): running container agents are still followed.
            (await podman.Client.Containers.InspectContainerAsync(name)).State!.Running.ShouldBeTrue();
            settings["Covibe:Containers:Agents"] = "false";
            await using var second = await TestServer.StartAsync(settings: settings, dataDirectory: data);
            (await second.GetAgentAsync(token, agentId)).Status.ShouldBe("running");
            await using var again = await second.ConnectAsync(token);
            await again.ReceiveAsync("team_joined");
            await again.SendAsync(new { type = "agent_subscribe", agentId, from = next });
            await File.WriteAllTextAsync(Path.Combine(Directory.EnumerateDirectories(Path.Combine(data, "workspaces"), agentId, SearchOption.AllDirectories).Single(), "release"), "");
            var (rest, _, status) = await again.CollectOutputAsync(agentId, from: next);
            status.ShouldBe("completed");
            before.Concat(rest).ToArray().ShouldBe(AgentHelpers.LogOf(second, agentId));
        }
        finally
        {
            StartupTests.Delete(data);
        }
    }

    [Fact]
    public async Task AnAgentInAContainer_CannotReachTheServersFilesItsProcessOrAnotherTeam()
    {
        var settings = podman.Settings();
        settings["Covibe:Agents:Types:probe:Command:0"] = "sh";
        settings["Covibe:Agents:Types:probe:Command:1"] = "-c";
        settings["Covibe:Agents:Types:probe:Command:2"] = IsolationTests.Probe;
        settings["Covibe:Agents:Types:probe:Command:3"] = "probe";
        settings["Covibe:Agents:Types:probe:Command:4"] = "{task}";
        settings["Covibe:Agents:Types:keep:Command:0"] = "sh";
        settings["Covibe:Agents:Types:keep:Command:1"] = "-c";
        settings["Covibe:Agents:Types:keep:Command:2"] = "printf '%s\\n' \"$1\" > /workspace/secret.txt";
        settings["Covibe:Agents:Types:keep:Command:3"] = "keep";
        settings["Covibe:Agents:Types:keep:Command:4"] = "{task}";
        await using var server = await TestServer.StartAsync(settings: settings);
        // Something of the server's, where an attacker would look for it.
        await File.WriteAllTextAsync(Path.Combine(server.DataDirectory, "jwt-secret"), "SERVER-ONLY-CANARY-5150");
        var teamA = await server.CreateTeamAsync("A");
        var teamB = await server.CreateTeamAsync("B", "Bob");
        var kept = await server.SpawnAsync(teamB.Auth.AccessToken, "team-b-private-plans-4242", "keep");
        (await server.WaitFinishedAsync(teamB.Auth.AccessToken, kept.Id)).Status.ShouldBe("completed");

        var probe = await server.SpawnAsync(teamA.Auth.AccessToken,
            $"{server.DataDirectory} {Path.Combine(server.DataDirectory, "workspaces")} {teamB.Auth.Team.Id} {Environment.ProcessId}", "probe");
        (await server.WaitFinishedAsync(teamA.Auth.AccessToken, probe.Id)).Status.ShouldBe("completed");
        var output = Encoding.UTF8.GetString(await server.OutputAsync(teamA.Auth.AccessToken, probe.Id));
        output.ShouldContain("probe-done");
        output.ShouldContain("uid=10001");
        output.ShouldNotContain("SERVER-ONLY-CANARY");
        output.ShouldNotContain("team-b-private-plans");
        output.ShouldNotContain("SQLite format 3");
        output.ShouldNotContain(TestServer.JwtSecret);
    }

    [Fact]
    public async Task InAContainer_InterruptStopsTheTurn_AndAnAgentIgnoringSigtermIsKilledAfterTheGrace()
    {
        await using var server = await TestServer.StartAsync(settings: podman.Settings(AgentHelpers.Settings(mockDelayMs: 300, mockSteps: 50)));
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        async Task<string> OutputAsync(string id) => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, id));

        var mock = await server.SpawnAsync(owner.Auth.AccessToken, "Big refactor");
        await Eventually.UntilAsync(() => OutputAsync(mock.Id), o => o.Contains("Step 1 of 50", StringComparison.Ordinal), "the mock starts its steps");
        (await client.PostAsync($"/api/agent/{mock.Id}/interrupt", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var interrupted = await server.WaitFinishedAsync(owner.Auth.AccessToken, mock.Id);
        interrupted.Status.ShouldBe("failed");
        interrupted.ExitCode.ShouldBe(130);
        (await OutputAsync(mock.Id)).ShouldContain("Interrupted.");

        var stubborn = await server.SpawnAsync(owner.Auth.AccessToken, "Never stops", "stubborn");
        await Eventually.UntilAsync(() => OutputAsync(stubborn.Id), o => o.Contains("ignoring SIGTERM", StringComparison.Ordinal), "the stubborn agent starts");
        (await client.DeleteAsync($"/api/agent/{stubborn.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, stubborn.Id, TimeSpan.FromSeconds(20))).Status.ShouldBe("killed");
    }

    [Fact]
    public async Task ServerKilledWithSigkill_TheContainerAgentRunsOn_AndTheRestartedServerLosesAndRepeatsNothing()
    {
        var data = StartupTests.TempDirectory();
        try
        {
            var container = "";
            await AgentRestartTests.KilledAndRestartedAsync(data,
                ["--Covibe:Containers:Agents=true", $"--Covibe:Containers:Host={podman.DockerHost}", $"--Covibe:Containers:Image={PodmanService.Image}"],
                async agentId =>
                {
                    container = (await podman.ListAsync()).Single(c => c.Labels.TryGetValue("covibe.agent", out var id) && id == agentId).ID;
                },
                async _ => (await podman.Client.Containers.InspectContainerAsync(container)).State!.Running.ShouldBeTrue("the container outlives a killed server"),
                async agentId => (await podman.Client.Containers.InspectContainerAsync(container)).State!.Running.ShouldBeTrue());
        }
        finally
        {
            StartupTests.Delete(data);
        }
    }

    [Fact]
    public async Task ConfiguredLimitsAndTheClaudeKey_ReachTheAgentsContainer_AndTheKeyNeverTheLog()
    {
        var settings = podman.Settings();
        settings["Covibe:Containers:AgentMemory"] = "768m";
        settings["Covibe:Containers:AgentCpus"] = "0.5";
        settings["Covibe:Containers:ClaudeApiKey"] = "sk-container-only-3141";
        // Alive long enough to be inspected: a finished agent's container is removed at once.
        settings["Covibe:Agents:Types:envwait:Command:0"] = "sh";
        settings["Covibe:Agents:Types:envwait:Command:1"] = "-c";
        settings["Covibe:Agents:Types:envwait:Command:2"] = "env; sleep 2";
        var logs = new LogSink();
        await using var server = await TestServer.StartAsync(settings: settings, logs: logs);
        var owner = await server.CreateTeamAsync();
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "show env", "envwait");
        var inspect = await InspectAsync($"covibes_agent_{owner.Auth.Team.Id}_{agent.Id}");
        inspect.HostConfig!.Memory.ShouldBe(768L * 1024 * 1024);
        inspect.HostConfig.NanoCPUs.ShouldBe(500_000_000);
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
        var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        output.ShouldContain("ANTHROPIC_API_KEY=sk-container-only-3141");
        output.ShouldContain("CLAUDE_API_KEY=sk-container-only-3141");
        logs.Lines.ShouldNotContain(line => line.Contains("sk-container-only-3141", StringComparison.Ordinal));
    }

    /// <summary>Inspects a container, again if Podman trips over its process exiting at that moment ("no such process", a 500).</summary>
    private async Task<ContainerInspectResponse> InspectAsync(string name)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await podman.Client.Containers.InspectContainerAsync(name);
            }
            catch (Docker.DotNet.DockerApiException e) when (attempt < 5 && e.ResponseBody?.Contains("no such process", StringComparison.Ordinal) == true)
            {
                await Task.Delay(100);
            }
        }
    }
}
