using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

public sealed class AgentServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(settings: AgentHelpers.Settings());

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Spawning, watching, controlling and replaying agents over REST and the hub.</summary>
public sealed class AgentTests(AgentServerFixture fixture) : IClassFixture<AgentServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Spawn_MockAgent_RunsToCompletionWithReportedCostAndItsWholeOutput()
    {
        var owner = await Server.CreateTeamAsync();
        var spawned = await Server.SpawnAsync(owner.Auth.AccessToken, "Add login page", "mock-code-writer");
        spawned.Status.ShouldBe("starting");
        spawned.OwnerId.ShouldBe(owner.Auth.User.Id);
        spawned.CanControl.ShouldBeTrue();

        var done = await Server.WaitFinishedAsync(owner.Auth.AccessToken, spawned.Id);
        done.Status.ShouldBe("completed");
        done.ExitCode.ShouldBe(0);
        done.StartedAt.ShouldNotBeNull();
        done.CompletedAt.ShouldNotBeNull();
        done.CostUsd.ShouldNotBeNull().ShouldBeGreaterThan(0);
        done.InputTokens.ShouldBe(120);
        done.OutputTokens.ShouldBe(480);
        done.Model.ShouldBe("covibe-mock-1");

        var output = await Server.OutputAsync(owner.Auth.AccessToken, spawned.Id, limit: 1000);
        output.ShouldBe(AgentHelpers.LogOf(Server, spawned.Id));
        done.OutputBytes.ShouldBe(output.Length);
        Encoding.UTF8.GetString(output).ShouldContain("\"tool_use\"");

        using var client = Server.Client(owner.Auth.AccessToken);
        var events = (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{spawned.Id}/events?limit=1000"))!;
        events.Complete.ShouldBeTrue();
        events.Events[0].Kind.ShouldBe("init");
        events.Events.ShouldContain(e => e.Kind == "tool_use" && e.Tool == "Write");
        events.Events.ShouldContain(e => e.Kind == "tool_result" && e.Text!.Contains("File created"));
        events.Events[^1].ShouldSatisfyAllConditions(e => e.Kind.ShouldBe("result"), e => e.IsError.ShouldBe(false), e => e.CostUsd.ShouldBe(done.CostUsd));
    }

    [Fact]
    public async Task Hub_TeammateWatchesLiveReadOnly_OwnerMayControl_AndBothGetEveryByte()
    {
        var (owner, member) = await Server.CreateTeamWithMemberAsync();
        await using var sarah = await Server.ConnectAsync();
        await sarah.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        await using var miguel = await Server.ConnectAsync();
        await miguel.JoinAsync(owner.Auth.Team.Id, member.AccessToken);

        await sarah.SendAsync(new { type = "agent_spawn", task = "Fix the flaky test", agentType = "mock", clientId = "s-1" });
        var spawned = await sarah.ReceiveAsync("agent_spawned");
        spawned.GetProperty("clientId").GetString().ShouldBe("s-1");
        var agentId = spawned.GetProperty("agent").GetProperty("id").GetString()!;
        var status = await miguel.ReceiveAsync("agent_status");
        status.GetProperty("agentId").GetString().ShouldBe(agentId);
        status.GetProperty("agent").GetProperty("canControl").GetBoolean().ShouldBeFalse();

        var firstForMiguel = await miguel.ReceiveAsync("agent_output");
        firstForMiguel.GetProperty("owner").GetString().ShouldBe(owner.Auth.User.Id);
        firstForMiguel.GetProperty("canControl").GetBoolean().ShouldBeFalse();
        var firstForSarah = await sarah.ReceiveAsync("agent_output");
        firstForSarah.GetProperty("canControl").GetBoolean().ShouldBeTrue();

        var miguelSaw = AgentHelpers.Decode(firstForMiguel).Concat((await miguel.CollectOutputAsync(agentId, firstForMiguel.GetProperty("next").GetInt64())).Bytes).ToArray();
        var sarahSaw = AgentHelpers.Decode(firstForSarah).Concat((await sarah.CollectOutputAsync(agentId, firstForSarah.GetProperty("next").GetInt64())).Bytes).ToArray();
        firstForMiguel.GetProperty("position").GetInt64().ShouldBe(0);
        var log = AgentHelpers.LogOf(Server, agentId);
        miguelSaw.ShouldBe(log);
        sarahSaw.ShouldBe(log);

        // The teammate may watch but not control.
        await miguel.SendAsync(new { type = "agent_control", agentId, command = "kill" });
        (await miguel.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("forbidden");
    }

    [Fact]
    public async Task LateJoiner_GetsTheWholeHistoryThenTheEnd_AndCanResumeFromAnyPosition()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Write docs");
        await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        var log = AgentHelpers.LogOf(Server, agent.Id);

        await using var late = await Server.ConnectAsync(owner.Auth.AccessToken);
        await late.ReceiveAsync("team_joined");
        await late.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (all, next, status) = await late.CollectOutputAsync(agent.Id);
        all.ShouldBe(log);
        next.ShouldBe(log.Length);
        status.ShouldBe("completed");

        await late.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 1000 });
        (await late.CollectOutputAsync(agent.Id, from: 1000)).Bytes.ShouldBe(log[1000..]);
    }

    [Fact]
    public async Task LateJoiner_WhileRunning_GetsHistoryThenLiveWithNoGapOrDuplicate()
    {
        var owner = await Server.CreateTeamAsync();
        await using var slowServer = await TestServer.StartAsync(settings: AgentHelpers.Settings(mockDelayMs: 100, mockSteps: 20));
        var team = await slowServer.CreateTeamAsync();
        var agent = await slowServer.SpawnAsync(team.Auth.AccessToken, "Long task");
        await Task.Delay(700);

        await using var late = await slowServer.ConnectAsync(team.Auth.AccessToken);
        await late.ReceiveAsync("team_joined");
        await late.SendAsync(new { type = "agent_subscribe", agentId = agent.Id });
        var (all, _, status) = await late.CollectOutputAsync(agent.Id);
        status.ShouldBe("completed");
        all.ShouldBe(AgentHelpers.LogOf(slowServer, agent.Id));
        owner.ShouldNotBeNull();
    }

    [Fact]
    public async Task Input_FromTheOwner_ReachesTheAgentsStdin()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Echo", "echo");
        using var client = Server.Client(owner.Auth.AccessToken);
        await WaitForOutputAsync(owner.Auth.AccessToken, agent.Id, "ready");

        (await client.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("hello agent\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await WaitForOutputAsync(owner.Auth.AccessToken, agent.Id, "echo: hello agent");

        await using var hub = await Server.ConnectAsync(owner.Auth.AccessToken);
        await hub.ReceiveAsync("team_joined");
        await hub.SendAsync(new { type = "agent_control", agentId = agent.Id, command = "input", data = "via the hub\n" });
        await WaitForOutputAsync(owner.Auth.AccessToken, agent.Id, "echo: via the hub");

        (await client.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("killed");
        var after = await client.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("too late\n"));
        await after.ShouldBeProblemAsync(HttpStatusCode.Conflict, "agent-not-running");
    }

    [Fact]
    public async Task AnAgentsProcesses_HoldNoneOfTheServersStandardStreams()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Keep running", "stubborn");
        await WaitForOutputAsync(owner.Auth.AccessToken, agent.Id, "ignoring SIGTERM");
        // The server's stdout and stderr (here, the test host's): a pipe to systemd, or to a terminal. An agent that held
        // them would keep them open for its whole life (a supervisor waiting for the server's output to end waits for it).
        var servers = new[] { 0, 1, 2 }.Select(fd => ReadLink($"/proc/self/fd/{fd}")).Where(target => target != "/dev/null").ToHashSet();
        servers.ShouldNotBeEmpty("the test host's output goes to a pipe");
        var processes = AgentHelpers.ProcessesOf(agent.Id);
        processes.ShouldNotBeEmpty();
        foreach (var pid in processes)
        {
            foreach (var fd in new[] { 0, 1, 2 })
            {
                ReadLink($"/proc/{pid}/fd/{fd}").ShouldNotBeOneOf([.. servers], $"process {pid} fd {fd}");
            }
        }
        using var client = Server.Client(owner.Auth.AccessToken);
        (await client.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);

        static string ReadLink(string path) => new FileInfo(path).LinkTarget ?? "";
    }

    [Fact]
    public async Task Interrupt_StopsTheMockAgentsTurn()
    {
        await using var slowServer = await TestServer.StartAsync(settings: AgentHelpers.Settings(mockDelayMs: 300, mockSteps: 50));
        var owner = await slowServer.CreateTeamAsync();
        var agent = await slowServer.SpawnAsync(owner.Auth.AccessToken, "Big refactor");
        await WaitForOutputAsync(owner.Auth.AccessToken, agent.Id, "Step 1 of 50", slowServer);
        using var client = slowServer.Client(owner.Auth.AccessToken);
        (await client.PostAsync($"/api/agent/{agent.Id}/interrupt", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var done = await slowServer.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.Status.ShouldBe("failed", $"it ended {done.Status} ({done.ExitCode}) after writing: {Encoding.UTF8.GetString(await slowServer.OutputAsync(owner.Auth.AccessToken, agent.Id))}");
        done.ExitCode.ShouldBe(130);
        Encoding.UTF8.GetString(await slowServer.OutputAsync(owner.Auth.AccessToken, agent.Id)).ShouldContain("Interrupted.");
    }

    [Fact]
    public async Task Kill_AnAgentIgnoringSigterm_EndsItWithSigkillAfterTheGrace()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Never stops", "stubborn");
        await WaitForOutputAsync(owner.Auth.AccessToken, agent.Id, "ignoring SIGTERM");
        using var client = Server.Client(owner.Auth.AccessToken);
        (await client.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var done = await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(20));
        done.Status.ShouldBe("killed");
        // Really gone: no process of this agent is left (its environment names it).
        AgentHelpers.ProcessesOf(agent.Id).ShouldBeEmpty();
        await (await client.DeleteAsync($"/api/agent/{agent.Id}")).ShouldBeProblemAsync(HttpStatusCode.Conflict, "agent-not-running");
    }

    [Fact]
    public async Task Control_ByTeammate_IsForbidden_AndOtherTeamsCannotSeeTheAgent()
    {
        var (owner, member) = await Server.CreateTeamWithMemberAsync();
        var outsider = await Server.CreateTeamAsync("Other");
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Echo", "echo");
        using var teammate = Server.Client(member.AccessToken);
        using var stranger = Server.Client(outsider.Auth.AccessToken);

        await (await teammate.DeleteAsync($"/api/agent/{agent.Id}")).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await teammate.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("x\n"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await teammate.PostAsync($"/api/agent/{agent.Id}/interrupt", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await teammate.GetFromJsonAsync<AgentDto>($"/api/agent/{agent.Id}"))!.CanControl.ShouldBeFalse();
        (await teammate.GetAsync($"/api/agent/{agent.Id}/output")).StatusCode.ShouldBe(HttpStatusCode.OK);

        await (await stranger.GetAsync($"/api/agent/{agent.Id}")).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await stranger.GetAsync($"/api/agent/{agent.Id}/output")).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await stranger.DeleteAsync($"/api/agent/{agent.Id}")).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        (await stranger.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.ShouldNotContain(a => a.Id == agent.Id);
        await using var strangerHub = await Server.ConnectAsync(outsider.Auth.AccessToken);
        await strangerHub.ReceiveAsync("team_joined");
        await strangerHub.SendAsync(new { type = "agent_subscribe", agentId = agent.Id });
        (await strangerHub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("not_found");

        using var ownerClient = Server.Client(owner.Auth.AccessToken);
        (await ownerClient.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    [Theory]
    [InlineData("", null, null, "task")]
    [InlineData("ok", "; touch /tmp/pwn", null, "repositoryUrl")]
    [InlineData("ok", "-oProxyCommand=touch /tmp/pwn", null, "repositoryUrl")]
    [InlineData("ok", "https://example.com/r.git", "-b", "branch")]
    [InlineData("ok", "https://example.com/r.git", "a..b", "branch")]
    [InlineData("ok", null, "main", "branch")]
    public async Task Spawn_BadFields_ReturnsValidationProblemAndStartsNothing(string task, string? repo, string? branch, string field)
    {
        var owner = await Server.CreateTeamAsync();
        using var client = Server.Client(owner.Auth.AccessToken);
        using var reply = await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest(task, "mock", repo, branch));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").TryGetProperty(field, out _).ShouldBeTrue(problem.ToString());
        (await client.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.ShouldBeEmpty();
        File.Exists("/tmp/pwn").ShouldBeFalse();
    }

    [Fact]
    public async Task Spawn_UnknownTypeOrMissingProgram_SaysWhatToDo()
    {
        var owner = await Server.CreateTeamAsync();
        using var client = Server.Client(owner.Auth.AccessToken);
        var unknown = await (await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "gpt-9"))).ShouldBeProblemAsync(HttpStatusCode.UnprocessableEntity, "agent-unavailable");
        unknown.GetProperty("detail").GetString()!.ShouldContain("mock");
        if (!File.Exists("/usr/bin/claude") && !File.Exists("/usr/local/bin/claude"))
        {
            var missing = await (await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "claude"))).ShouldBeProblemAsync(HttpStatusCode.UnprocessableEntity, "agent-unavailable");
            missing.GetProperty("detail").GetString()!.ShouldContain("USE_MOCK_AGENTS");
        }
    }

    [Fact]
    public async Task Seed003Route_AcceptsItsBodyAndAnswersInItsShape()
    {
        var owner = await Server.CreateTeamAsync();
        using var client = Server.Client(owner.Auth.AccessToken);
        using var reply = await client.PostAsJsonAsync("/api/agents/spawn", new { task = "Hello World function", agentType = "mock", teamId = owner.Auth.Team.Id });
        reply.StatusCode.ShouldBe(HttpStatusCode.Created);
        var body = (await reply.Content.ReadFromJsonAsync<SpawnAgentResponse>())!;
        body.Success.ShouldBeTrue();
        body.Method.ShouldBe("local");
        using var otherTeam = await client.PostAsJsonAsync("/api/agents/spawn", new { task = "x", agentType = "mock", teamId = "someone-elses" });
        await otherTeam.ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task Output_TenMegabytesOfRandomBytes_ArrivesExactlyOverRestAndHub()
    {
        var owner = await Server.CreateTeamAsync();
        await using var hub = await Server.ConnectAsync();
        await hub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "burst", "burst");
        var (viaHub, _, status) = await hub.CollectOutputAsync(agent.Id, timeout: TimeSpan.FromSeconds(60));
        status.ShouldBe("completed");
        var log = AgentHelpers.LogOf(Server, agent.Id);
        log.Length.ShouldBe(10 * 1024 * 1024 + "burst done\n".Length);
        SHA256.HashData(viaHub).ShouldBe(SHA256.HashData(log));
        SHA256.HashData(await Server.OutputAsync(owner.Auth.AccessToken, agent.Id)).ShouldBe(SHA256.HashData(log));
        // The parser survived it too: the server still answers and the agent's final state is recorded.
        (await Server.GetAgentAsync(owner.Auth.AccessToken, agent.Id)).OutputBytes.ShouldBe(log.Length);
    }

    [Fact]
    public async Task Output_ToAClientThatNegotiatedCompression_ArrivesExact_BesideChatAndPresence()
    {
        var owner = await Server.CreateTeamAsync();
        await using var hub = await Server.ConnectAsync(deflate: true);
        hub.Socket.HttpResponseHeaders!["Sec-WebSocket-Extensions"].Single()
            .ShouldBe("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        await hub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        await using var plain = await Server.ConnectAsync(owner.Auth.AccessToken);
        await plain.ReceiveAsync("team_joined");
        // Its own messages both ways (compressed per connection by the socket) work beside the shared frames.
        await hub.SendAsync(new { type = "chat_message", message = "compressed both ways" });
        (await plain.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("compressed both ways");
        (await hub.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("compressed both ways");

        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "burst", "burst");
        await plain.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (viaDeflate, _, status) = await hub.CollectOutputAsync(agent.Id, timeout: TimeSpan.FromSeconds(60));
        var (viaPlain, _, _) = await plain.CollectOutputAsync(agent.Id, timeout: TimeSpan.FromSeconds(60));
        status.ShouldBe("completed");
        var log = AgentHelpers.LogOf(Server, agent.Id);
        SHA256.HashData(viaDeflate).ShouldBe(SHA256.HashData(log));
        SHA256.HashData(viaPlain).ShouldBe(SHA256.HashData(log));
    }

    [Fact]
    public async Task SubscriberThatStopsReading_DoesNotDelayOthers_AndLaterGetsEveryByteFromTheLog()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "burst", "burst");
        await using var stalled = await Server.ConnectAsync(owner.Auth.AccessToken, read: false);
        await stalled.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        await using var reader = await Server.ConnectAsync(owner.Auth.AccessToken);
        await reader.ReceiveAsync("team_joined");
        await reader.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (fast, _, _) = await reader.CollectOutputAsync(agent.Id, timeout: TimeSpan.FromSeconds(30));
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(30));
        var log = AgentHelpers.LogOf(Server, agent.Id);
        SHA256.HashData(fast).ShouldBe(SHA256.HashData(log));

        // The stalled one was held back, not dropped: once it reads, it gets all 10 MB.
        stalled.StartReading();
        var (slow, _, status) = await stalled.CollectOutputAsync(agent.Id, timeout: TimeSpan.FromSeconds(30));
        status.ShouldBe("completed");
        SHA256.HashData(slow).ShouldBe(SHA256.HashData(log));
    }

    [Fact]
    public async Task Spawn_WithRepositoryAndBranch_ClonesIntoTheWorkspaceShowingProgress()
    {
        var repo = CreateRepository();
        try
        {
            var owner = await Server.CreateTeamAsync();
            var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "look around", "ls", $"file://{repo}", "feature/login");
            var done = await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
            done.Status.ShouldBe("completed");
            var output = Encoding.UTF8.GetString(await Server.OutputAsync(owner.Auth.AccessToken, agent.Id));
            output.ShouldContain("Cloning into");
            output.ShouldContain("README.md");
            output.ShouldContain("login.txt");
            output.ShouldContain("feature/login");

            var missing = await Server.SpawnAsync(owner.Auth.AccessToken, "look around", "ls", "file:///nonexistent/repo.git");
            var failed = await Server.WaitFinishedAsync(owner.Auth.AccessToken, missing.Id);
            failed.Status.ShouldBe("failed");
            failed.ExitCode.ShouldBe(128);
            Encoding.UTF8.GetString(await Server.OutputAsync(owner.Auth.AccessToken, missing.Id)).ShouldContain("fatal:");
        }
        finally
        {
            StartupTests.Delete(repo);
        }
    }

    private static string CreateRepository()
    {
        // Agents run sandboxed: they see this machine's repositories only where the operator shows them some.
        var repo = Path.Combine(AgentHelpers.RepositoriesRoot, Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(repo);
        void Git(params string[] args)
        {
            var info = new System.Diagnostics.ProcessStartInfo("git") { WorkingDirectory = repo, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in (string[])["-c", "user.name=Test", "-c", "user.email=test@example.com", .. args])
            {
                info.ArgumentList.Add(a);
            }
            using var p = System.Diagnostics.Process.Start(info)!;
            p.WaitForExit();
            p.ExitCode.ShouldBe(0, p.StandardError.ReadToEnd());
        }
        Git("init", "-q", "-b", "main");
        File.WriteAllText(Path.Combine(repo, "README.md"), "hello\n");
        Git("add", ".");
        Git("commit", "-q", "-m", "init");
        Git("checkout", "-q", "-b", "feature/login");
        File.WriteAllText(Path.Combine(repo, "login.txt"), "login\n");
        Git("add", ".");
        Git("commit", "-q", "-m", "login");
        Git("checkout", "-q", "main");
        AgentHelpers.GiveToSandboxUser(repo);
        return repo;
    }

    [Theory]
    [InlineData("{\"type\":\"agent_control\",\"command\":\"kill\"}", "invalid_message")]
    [InlineData("{\"type\":\"agent_control\",\"agentId\":\"nope\",\"command\":\"kill\"}", "not_found")]
    [InlineData("{\"type\":\"agent_control\",\"agentId\":\"nope\",\"command\":\"explode\"}", "invalid_message")]
    [InlineData("{\"type\":\"agent_spawn\",\"task\":\"\"}", "invalid_message")]
    [InlineData("{\"type\":\"agent_spawn\",\"task\":\"x\",\"agentType\":\"gpt-9\"}", "agent_unavailable")]
    [InlineData("{\"type\":\"agent_spawn\",\"task\":\"x\",\"vmId\":\"vm-prod-001\"}", "invalid_message")]
    [InlineData("{\"type\":\"agent_subscribe\",\"agentId\":\"nope\"}", "not_found")]
    [InlineData("{\"type\":\"agent_subscribe\",\"agentId\":\"nope\",\"from\":-5}", "invalid_message")]
    public async Task Hub_BadAgentMessages_GetErrorsAndTheConnectionStaysUsable(string text, string code)
    {
        var owner = await Server.CreateTeamAsync();
        await using var hub = await Server.ConnectAsync(owner.Auth.AccessToken);
        await hub.ReceiveAsync("team_joined");
        await hub.SendTextAsync(text);
        var error = await hub.ReceiveAsync("error");
        error.GetProperty("code").GetString().ShouldBe(code, error.ToString());
        error.GetProperty("error").GetString().ShouldNotBeNullOrWhiteSpace();
        await hub.SendAsync(new { type = "agent_spawn", task = "still works", agentType = "mock" });
        await hub.ReceiveAsync("agent_spawned");
    }

    [Fact]
    public async Task Hub_ControlForAgentOfAnotherTeam_IsNotFound()
    {
        var owner = await Server.CreateTeamAsync();
        var outsider = await Server.CreateTeamAsync("Other");
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Echo", "echo");
        await using var hub = await Server.ConnectAsync(outsider.Auth.AccessToken);
        await hub.ReceiveAsync("team_joined");
        await hub.SendAsync(new { type = "agent_control", agentId = agent.Id, command = "kill" });
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("not_found");
        (await Server.GetAgentAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldNotBe("killed");
        using var client = Server.Client(owner.Auth.AccessToken);
        (await client.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task Hub_OwnerKillsTheirAgent_AndTheTeamSeesItKilled()
    {
        var (owner, member) = await Server.CreateTeamWithMemberAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Echo", "echo");
        await using var miguel = await Server.ConnectAsync(member.AccessToken);
        await miguel.ReceiveAsync("team_joined");
        await using var sarah = await Server.ConnectAsync(owner.Auth.AccessToken);
        await sarah.ReceiveAsync("team_joined");
        await sarah.SendAsync(new { type = "agent_control", agentId = agent.Id, command = "kill" });
        var killed = await miguel.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_status"
            && m.GetProperty("agentId").GetString() == agent.Id && m.GetProperty("status").GetString() == "killed");
        killed.GetProperty("agent").GetProperty("completedAt").GetDateTime().ShouldBeGreaterThan(agent.CreatedAt);
        await sarah.SendAsync(new { type = "agent_control", agentId = agent.Id, command = "kill" });
        (await sarah.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("agent_not_running");
    }

    [Fact]
    public async Task UseMockAgents_RoutesEverySpawnToTheMock_AndWorkspacesStayUnderWorkspaceBase()
    {
        var workspaces = StartupTests.TempDirectory();
        var settings = AgentHelpers.Settings();
        settings["Covibe:Agents:UseMockAgents"] = "true";
        settings["Covibe:Agents:WorkspaceBase"] = workspaces;
        await using (var server = await TestServer.StartAsync(settings: settings))
        {
            var owner = await server.CreateTeamAsync();
            var agent = await server.SpawnAsync(owner.Auth.AccessToken, "../../etc/passwd; rm -rf / #", "claude");
            agent.Type.ShouldBe("mock");
            (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
            var events = await server.Client(owner.Auth.AccessToken).GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events");
            // The mock prints where it works: the team's workspace as the sandbox shows it, which is the team's directory under WORKSPACE_BASE.
            events!.Events[0].Text.ShouldBe($"/workspace/{agent.Id}");
            Directory.Exists(Path.Combine(workspaces, owner.Auth.Team.Id, agent.Id)).ShouldBeTrue();
            (await server.SpawnAsync(owner.Auth.AccessToken, "x", "code-writer")).Type.ShouldBe("mock-code-writer");
        }
        StartupTests.Delete(workspaces);
    }

    [Fact]
    public async Task Spawn_BeyondTheRateOrTheTeamsLimit_IsRefusedSayingWhy()
    {
        var settings = AgentHelpers.Settings();
        settings["Covibe:Agents:SpawnsPerMinute"] = "3";
        settings["Covibe:Agents:MaxActivePerTeam"] = "2";
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var first = await server.SpawnAsync(owner.Auth.AccessToken, "one", "echo");
        var second = await server.SpawnAsync(owner.Auth.AccessToken, "two", "echo");
        var full = await (await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("three", "echo"))).ShouldBeProblemAsync((HttpStatusCode)429, "too-many-agents");
        full.GetProperty("detail").GetString()!.ShouldContain("already has 2 agents running");

        (await client.DeleteAsync($"/api/agent/{first.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await server.WaitFinishedAsync(owner.Auth.AccessToken, first.Id);
        await server.SpawnAsync(owner.Auth.AccessToken, "three", "echo");
        (await client.DeleteAsync($"/api/agent/{second.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await server.WaitFinishedAsync(owner.Auth.AccessToken, second.Id);
        // Room in the team now, but a fourth spawn within the minute is one too many.
        var fast = await (await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("four", "echo"))).ShouldBeProblemAsync((HttpStatusCode)429, "too-many-agents");
        fast.GetProperty("detail").GetString()!.ShouldContain("in the last minute");
        // The refused spawn left nothing behind (its row is checked into the team's limit, then taken back out).
        (await client.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.ShouldNotContain(a => a.Task == "four");
        foreach (var agent in (await client.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.Where(a => !AgentStatuses.IsFinal(a.Status)))
        {
            await client.DeleteAsync($"/api/agent/{agent.Id}");
        }
    }

    [Fact]
    public async Task Spawn_TakesThreeDatabaseRoundTripsBeforeTheProcessStarts_TheLoginCheckIncluded()
    {
        var logs = new LogSink();
        var settings = AgentHelpers.Settings();
        settings["Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command"] = "Information";
        await using var server = await TestServer.StartAsync(settings: settings, logs: logs);
        var owner = await server.CreateTeamAsync();

        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "count the trips", "echo");

        // What the spawn request wrote, in order, up to the line that says the process started.
        var spawned = logs.Entries.First(e => e.Message.StartsWith($"Agent {agent.Id} (echo) spawned", StringComparison.Ordinal));
        spawned.TraceId.ShouldNotBeNull();
        var trips = logs.Entries.Where(e => e.TraceId == spawned.TraceId).TakeWhile(e => e != spawned)
            .Where(e => e.Category == "Microsoft.EntityFrameworkCore.Database.Command" && e.Message.StartsWith("Executed DbCommand", StringComparison.Ordinal))
            .ToList();
        // The session, the team's placement, and the insert that checks the team's limit (a count and an insert before).
        trips.Count.ShouldBe(3, string.Join("\n", trips.Select(t => t.Message)));
        trips[^1].Message.ShouldContain("INSERT INTO agents");
        await server.Client(owner.Auth.AccessToken).DeleteAsync($"/api/agent/{agent.Id}");
    }

    [Fact]
    public async Task Agent_DoesNotInheritTheServersSecrets()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "env", "env");
        await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        var env = Encoding.UTF8.GetString(await Server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        env.ShouldContain($"COVIBE_AGENT_ID={agent.Id}");
        env.ShouldNotContain(TestServer.JwtSecret);
        env.ShouldNotContain("JWT_SECRET");
    }

    private async Task WaitForOutputAsync(string token, string agentId, string text, TestServer? server = null)
    {
        server ??= Server;
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(token, agentId)).Contains(text, StringComparison.Ordinal),
            $"'{text}' in the output");
    }
}
