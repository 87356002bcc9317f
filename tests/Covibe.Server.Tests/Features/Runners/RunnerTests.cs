using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Runner VMs (seed 001's polling and tunnel strategies) with a real <c>covibe runner</c> as another user, in its own
/// home, against a real server on loopback: registration, agents, input, kill, terminals, the audit log.
/// </summary>
public sealed class RunnerTests(SshServer vm) : IClassFixture<SshServer>
{
    internal static Dictionary<string, string> Settings(SshServer vm)
    {
        var settings = AgentHelpers.Settings();
        // The mock agent as installed on the VM (the runner's own covibe).
        string[] mock = [vm.Covibe, "mock-agent", "--task={task}", "--kind", "code-writer", "--delay-ms", "20", "--steps", "4"];
        for (var i = 0; i < mock.Length; i++)
        {
            settings[$"Covibe:Agents:Types:mock-vm:Command:{i}"] = mock[i];
        }
        // A mock that takes its time (50 steps, 300 ms apart), to be interrupted.
        AgentHelpers.AddType(settings, "mock-slow-vm", [vm.Covibe, "mock-agent", "--task={task}", "--kind", "general", "--delay-ms", "300", "--steps", "50"]);
        return settings;
    }

    /// <summary>Adds a runner VM as <paramref name="token"/>'s member; answers it with its one-time registration token and command.</summary>
    internal static async Task<VmDto> AddRunnerVmAsync(HttpClient client, string name = "build-runner", string type = "polling")
    {
        using var reply = await client.PostAsJsonAsync("/api/vm/register", new RegisterVmRequest(name, null, null, null, ConnectionType: type));
        reply.StatusCode.ShouldBe(HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<VmDto>())!;
    }

    internal static async Task<AgentDto> SpawnAsync(HttpClient client, string vmId, string type, string task = "on the runner")
    {
        using var reply = await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest(task, type, VmId: vmId));
        reply.StatusCode.ShouldBe(HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<AgentDto>())!;
    }

    internal static Task<VmDto> OnlineAsync(HttpClient client, string vmId) =>
        Eventually.UntilAsync(async () => (await client.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single(v => v.Id == vmId),
            v => v.Status == "online", "the runner VM is online", TimeSpan.FromSeconds(30));

    [Theory]
    [InlineData("websocket")]
    [InlineData("poll")]
    public async Task Runner_RegistersWithItsOneTimeToken_AndRunsAgentsAndTerminalsAsItsOwnUser(string transport)
    {
        await using var server = await TestServer.StartAsync(settings: Settings(vm));
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var added = await AddRunnerVmAsync(client);
        added.ShouldSatisfyAllConditions(
            v => v.ConnectionType.ShouldBe("polling"),
            v => v.RegistrationToken!.ShouldStartWith("cvreg_"),
            v => v.RegistrationExpiresAt.ShouldNotBeNull(),
            v => v.RunnerCommand.ShouldBe($"covibe runner --server {server.Url.ToString().TrimEnd('/')} --token {v.RegistrationToken}"),
            v => v.Status.ShouldBe("unknown"));
        // Shown once: the list never shows it again, to the owner or a teammate.
        (await client.GetStringAsync("/api/vm/list")).ShouldNotContain(added.RegistrationToken!);
        using var teammate = server.Client(member.AccessToken);
        (await teammate.GetStringAsync("/api/vm/list")).ShouldNotContain(added.RegistrationToken!);

        await using var machine = RunnerMachine.Create(vm);
        machine.Start(["--server", server.Url.ToString(), "--token", added.RegistrationToken!, "--transport", transport]);
        var online = await OnlineAsync(client, added.Id);
        online.ShouldSatisfyAllConditions(v => v.LastPoll.ShouldNotBeNull(), v => v.Username.ShouldBe(machine.User), v => v.RunnerHostname.ShouldNotBeNull());
        // Its credential is on the VM only encrypted (0600), and nowhere in the server's data.
        var saved = Path.Combine(machine.Home, ".config", "covibe", "runner");
        File.GetUnixFileMode(saved).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        (await File.ReadAllTextAsync(saved)).ShouldNotContain("cvr_");

        // A whole agent's output reaches the team, byte for byte as the VM's log holds it.
        var lines = await SpawnAsync(client, added.Id, "lines");
        lines.RunsOn.ShouldBe("runner");
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, lines.Id)).Status.ShouldBe("completed");
        var output = await server.OutputAsync(owner.Auth.AccessToken, lines.Id);
        Encoding.UTF8.GetString(output).ShouldEndWith("19999\n20000\n");
        output.ShouldBe(machine.LogOf(lines.Id));

        // The mock agent, as the runner's user, in ~/project/<id> there.
        var mock = await SpawnAsync(client, added.Id, "mock-vm");
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, mock.Id)).Status.ShouldBe("completed");
        Directory.Exists(Path.Combine(machine.Home, "project", mock.Id)).ShouldBeTrue();

        // Input and kill, by the owner; a teammate may watch but not control.
        var echo = await SpawnAsync(client, added.Id, "echo");
        await using var hub = await server.ConnectAsync(owner.Auth.AccessToken);
        await hub.ReceiveAsync("team_joined");
        await hub.SendAsync(new { type = "agent_subscribe", agentId = echo.Id, from = 0 });
        await hub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output" && AgentHelpers.Decode(m).AsSpan().IndexOf("ready"u8) >= 0, TimeSpan.FromSeconds(30));
        (await client.PostAsJsonAsync($"/api/agent/{echo.Id}/input", new AgentInputRequest("over the runner\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await Eventually.UntilAsync(() => Task.FromResult(Encoding.UTF8.GetString(machine.LogOf(echo.Id))), log => log.Contains("echo: over the runner"), "the input reaches the agent");
        (await teammate.DeleteAsync($"/api/agent/{echo.Id}")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await client.DeleteAsync($"/api/agent/{echo.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, echo.Id)).Status.ShouldBe("killed");
        await Eventually.UntilAsync(() => Task.FromResult(AgentHelpers.ProcessesOf(echo.Id)), p => p.Count == 0, "no process of the killed agent remains on the VM");

        // A terminal on the VM: a shell there, as the runner's user, that follows resizes.
        await using (var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken))
        {
            var created = await terminal.CreateAsync("on-runner", new { vm = added.Id, cols = 90, rows = 20 });
            created.GetProperty("info").GetProperty("host").GetString().ShouldBe(added.Name);
            await terminal.CommandAsync("on-runner", "echo who=$(whoami) size=$(stty size) at=$(pwd)");
            await terminal.OutputUntilAsync("on-runner", $"who={machine.User} size=20 90 at={machine.Home}", TimeSpan.FromSeconds(30));
            await terminal.SendAsync(new { type = "session", action = "resize", id = "on-runner", config = new { cols = 132, rows = 43 } });
            await terminal.ReceiveAsync(m => TerminalClient.Is(m, "session", "resized"));
            await terminal.CommandAsync("on-runner", "echo now=$(stty size)");
            await terminal.OutputUntilAsync("on-runner", "now=43 132", TimeSpan.FromSeconds(20));
            await terminal.SendAsync(new { type = "session", action = "close", id = "on-runner" });
            await terminal.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"), TimeSpan.FromSeconds(20));
        }

        // The owner reads who did what on the VM; a teammate may not.
        var audit = (await client.GetFromJsonAsync<VmAuditDto[]>($"/api/vm/{added.Id}/audit"))!;
        audit.Select(a => a.Action).ShouldBe(["vm.register", "runner.register", "runner.connect", "agent.start", "agent.start", "agent.start", "agent.input", "agent.kill", "terminal.open"], ignoreOrder: true);
        audit.Where(a => a.Action.StartsWith("agent.", StringComparison.Ordinal)).ShouldAllBe(a => a.Actor == "member" && a.ActorName == "Sarah");
        audit.ShouldAllBe(a => a.Detail == null || !a.Detail.Contains("cvr") && !a.Detail.Contains(added.RegistrationToken!));
        (await teammate.GetAsync($"/api/vm/{added.Id}/audit")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);

        // The token was used once; a stolen copy gets nothing.
        using var anonymous = new HttpClient { BaseAddress = server.Url };
        using var reused = await anonymous.PostAsJsonAsync("/api/runner/register", new RunnerRegisterRequest(added.RegistrationToken));
        await reused.ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-token-invalid");

        // Revoked by its owner: the runner is cut off at once, says why and stops (it does not retry a dead credential).
        (await client.PostAsync($"/api/vm/{added.Id}/revoke", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await machine.WaitForExitAsync(TimeSpan.FromSeconds(30))).ShouldBe(3, machine.Output);
        machine.Output.ShouldContain("revoked");
        machine.Output.ShouldNotContain("cvr_");
    }

    [Fact]
    public async Task Runner_ClonesTheRepositoryOnTheVm_AndInterruptReachesTheAgent()
    {
        // A repository the runner's user can read (git refuses repositories of other owners).
        var repo = Path.Combine(vm.ToolsDirectory, "repo-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(repo);
        await File.WriteAllTextAsync(Path.Combine(repo, "README.md"), "cloned by the runner\n");
        foreach (var args in new[] { new[] { "init", "-q", "-b", "main" }, ["add", "."], ["commit", "-q", "-m", "init"] })
        {
            using var git = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("git", ["-C", repo, "-c", "user.name=T", "-c", "user.email=t@example.com", .. args]))!;
            await git.WaitForExitAsync();
        }
        if (Environment.UserName == "root")
        {
            using var chown = System.Diagnostics.Process.Start("chown", ["-R", vm.User, repo])!;
            await chown.WaitForExitAsync();
        }
        var settings = Settings(vm);
        settings["Covibe:Boxes:AllowLocalRepositories"] = "true";
        await using var setup = await RunnerSetup.StartAsync(vm, settings, "tunnel");
        var (server, owner, client, added, machine) = setup;
        added.ConnectionType.ShouldBe("tunnel");

        using (var reply = await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("read it", "slow", $"file://{repo}", "main", VmId: added.Id)))
        {
            var cloned = (await reply.Content.ReadFromJsonAsync<AgentDto>())!;
            (await server.WaitFinishedAsync(owner.Auth.AccessToken, cloned.Id)).Status.ShouldBe("completed");
            Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, cloned.Id)).ShouldContain("Cloning into");
            File.ReadAllText(Path.Combine(machine.Home, "project", cloned.Id, "README.md")).ShouldBe("cloned by the runner\n");
        }

        var slow = await SpawnAsync(client, added.Id, "mock-slow-vm", "Big refactor");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, slow.Id)), o => o.Contains("Step 1 of 50"), "the agent works");
        (await client.PostAsync($"/api/agent/{slow.Id}/interrupt", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, slow.Id);
        (done.Status, done.ExitCode).ShouldBe(("failed", (int?)130));
        Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, slow.Id)).ShouldContain("Interrupted.");

        // A box cannot go on a runner VM (boxes are made over SSH): said so, nothing made.
        using var box = await client.PostAsJsonAsync("/api/boxes", new { repoUrl = $"file://{repo}", branch = "main", vmId = added.Id });
        var refused = await box.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        refused.GetProperty("errors").GetProperty("vmId")[0].GetString()!.ShouldContain("runner VM");
    }
}

/// <summary>A server with a team, and a runner VM of its owner whose real runner is connected.</summary>
internal sealed record RunnerSetup(TestServer Server, CreateTeamResponse Owner, HttpClient Client, VmDto Vm, RunnerMachine Machine) : IAsyncDisposable
{
    public static async Task<RunnerSetup> StartAsync(SshServer vm, Dictionary<string, string> settings, string connectionType = "polling")
    {
        var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        var client = server.Client(owner.Auth.AccessToken);
        var added = await RunnerTests.AddRunnerVmAsync(client, type: connectionType);
        var machine = RunnerMachine.Create(vm);
        machine.Start(["--server", server.Url.ToString(), "--token", added.RegistrationToken!]);
        await RunnerTests.OnlineAsync(client, added.Id);
        return new RunnerSetup(server, owner, client, added, machine);
    }

    public async ValueTask DisposeAsync()
    {
        await Machine.DisposeAsync();
        Client.Dispose();
        await Server.DisposeAsync();
    }
}
