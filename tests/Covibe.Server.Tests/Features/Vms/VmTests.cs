using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Features.Secrets;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Tests;

/// <summary>Registering VMs against a real sshd: pinned host keys, encrypted credentials, permissions, rotation.</summary>
public sealed class VmTests(SshServer ssh) : IClassFixture<SshServer>
{
    private RegisterVmRequest Request(string? fingerprint, string name = "Sarah's VM") =>
        new(name, "127.0.0.1", ssh.Port, ssh.User, PrivateKey: ssh.ClientPrivateKey, HostKeyFingerprint: fingerprint);

    [Fact]
    public async Task Register_AsksToConfirmTheHostKey_ThenStoresOnlyCiphertext()
    {
        var data = StartupTests.TempDirectory();
        await using (var server = await TestServer.StartAsync(dataDirectory: data))
        {
            var (owner, member) = await server.CreateTeamWithMemberAsync();
            using var client = server.Client(owner.Auth.AccessToken);

            using var unconfirmed = await client.PostAsJsonAsync("/api/vm/register", Request(null));
            var problem = await unconfirmed.ShouldBeProblemAsync(HttpStatusCode.Conflict, "confirm-host-key");
            var offered = problem.GetProperty("fingerprints").EnumerateArray().Select(f => f.GetString()!).Single(f => f.EndsWith(ssh.HostKeyFingerprint, StringComparison.Ordinal));
            offered.ShouldBe($"ssh-ed25519 {ssh.HostKeyFingerprint}");

            using var wrong = await client.PostAsJsonAsync("/api/vm/register", Request("SHA256:notthisone"));
            await wrong.ShouldBeProblemAsync(HttpStatusCode.Conflict, "host-key-mismatch");
            // The right fingerprint under another key type is not the key that was offered.
            using var wrongType = await client.PostAsJsonAsync("/api/vm/register", Request($"ssh-rsa {ssh.HostKeyFingerprint}"));
            await wrongType.ShouldBeProblemAsync(HttpStatusCode.Conflict, "host-key-mismatch");

            // Sent back exactly as it was offered.
            using var registered = await client.PostAsJsonAsync("/api/vm/register", Request(offered));
            registered.StatusCode.ShouldBe(HttpStatusCode.Created, await registered.Content.ReadAsStringAsync());
            var body = await registered.Content.ReadAsStringAsync();
            body.ShouldNotContain("PRIVATE KEY");
            var vm = JsonSerializer.Deserialize<VmDto>(body, JsonSerializerOptions.Web)!;
            vm.ShouldSatisfyAllConditions(v => v.IsOwner.ShouldBeTrue(), v => v.Host.ShouldBe("127.0.0.1"), v => v.AuthMethod.ShouldBe("key"), v => v.HostKeyFingerprint.ShouldBe(ssh.HostKeyFingerprint),
                // The login was checked as it was registered: online at once, not "unknown" until the next health check.
                v => v.Status.ShouldBe("online"), v => v.LastSeen.ShouldNotBeNull());

            // A teammate sees that it exists and its status, not where it is or how to get in.
            using var teammate = server.Client(member.AccessToken);
            var seen = (await teammate.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single();
            seen.ShouldSatisfyAllConditions(v => v.Name.ShouldBe("Sarah's VM"), v => v.IsOwner.ShouldBeFalse(), v => v.Host.ShouldBeNull(), v => v.Username.ShouldBeNull());
            await (await teammate.PutAsJsonAsync("/api/vm/update", new UpdateVmRequest(vm.Id, Name: "mine now"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
            await (await teammate.DeleteAsync($"/api/vm/{vm.Id}")).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
            (await (await client.PutAsJsonAsync("/api/vm/update", new UpdateVmRequest(vm.Id, Name: "Build box"))).Content.ReadFromJsonAsync<VmDto>())!.Name.ShouldBe("Build box");
        }

        // Nothing on disk holds the key in plaintext: not the database, not its journal.
        await DiskScan.ShouldNotHoldAsync(data, ssh.ClientPrivateKey.Split('\n')[1], "PRIVATE KEY");
        StartupTests.Delete(data);
    }

    [Theory]
    [InlineData("-oProxyCommand=touch /tmp/pwn", "root", "host")]
    [InlineData("127.0.0.1; touch /tmp/pwn", "root", "host")]
    [InlineData("$(id)", "root", "host")]
    [InlineData("127.0.0.1", "-oProxyCommand=touch /tmp/pwn", "username")]
    [InlineData("127.0.0.1", "root; touch /tmp/pwn", "username")]
    [InlineData("127.0.0.1", "`id`", "username")]
    [InlineData("127.0.0.1\nevil", "root", "host")]
    public async Task Register_HostileHostOrUser_IsRefusedAndRunsNothing(string host, string user, string field)
    {
        await using var server = await TestServer.StartAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        using var reply = await client.PostAsJsonAsync("/api/vm/register", new RegisterVmRequest("x", host, 22, user, PrivateKey: ssh.ClientPrivateKey));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").TryGetProperty(field, out _).ShouldBeTrue(problem.ToString());
        File.Exists("/tmp/pwn").ShouldBeFalse();
    }

    [Fact]
    public async Task Register_WithAKeyOrPasswordTheVmRefuses_IsAnErrorAtOnce_EvenWhileATeammatesKeyForTheSameAccountIsLoaded()
    {
        await using var server = await TestServer.StartAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        // The owner's VM works: its key is in the server's ssh-agent and a shared connection to that account is open.
        (await client.PostAsJsonAsync("/api/vm/register", Request(ssh.HostKeyFingerprint))).StatusCode.ShouldBe(HttpStatusCode.Created);

        // A teammate registers the same host and user with a key that account does not accept.
        var directory = StartupTests.TempDirectory();
        Directory.CreateDirectory(directory);
        var keyFile = Path.Combine(directory, "stranger");
        using (var keygen = System.Diagnostics.Process.Start("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile]))
        {
            await keygen.WaitForExitAsync();
        }
        var strangerKey = await File.ReadAllTextAsync(keyFile);
        StartupTests.Delete(directory);
        using var teammate = server.Client(member.AccessToken);
        using var refused = await teammate.PostAsJsonAsync("/api/vm/register",
            new RegisterVmRequest("Not mine", "127.0.0.1", ssh.Port, ssh.User, PrivateKey: strangerKey, HostKeyFingerprint: ssh.HostKeyFingerprint));
        var problem = await refused.ShouldBeProblemAsync((HttpStatusCode)422, "vm-login-failed");
        problem.GetProperty("detail").GetString()!.ShouldContain("refused the credential");
        problem.ToString().ShouldNotContain(strangerKey.Split('\n')[1]); // the key itself is never echoed

        if (ssh.Password is not null)
        {
            using var badPassword = await teammate.PostAsJsonAsync("/api/vm/register",
                new RegisterVmRequest("Guess", "127.0.0.1", ssh.Port, ssh.User, Password: "not-the-password", HostKeyFingerprint: ssh.HostKeyFingerprint));
            (await badPassword.ShouldBeProblemAsync((HttpStatusCode)422, "vm-login-failed")).ToString().ShouldNotContain("not-the-password");
        }
        // Nothing was saved for the teammate: the team has the owner's VM only.
        (await teammate.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.ShouldHaveSingleItem().IsOwner.ShouldBeFalse();
    }

    [Fact]
    public async Task Register_NothingListening_SaysTheVmIsUnreachable()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        using var reply = await client.PostAsJsonAsync("/api/vm/register", new RegisterVmRequest("x", "127.0.0.1", PostgresServer.FreePort(), "root", PrivateKey: ssh.ClientPrivateKey));
        await reply.ShouldBeProblemAsync(HttpStatusCode.BadGateway, "vm-unreachable");
    }

    [Fact]
    public async Task Cli_VmAddConfirmsTheHostKey_ListsIt_AndSecretsRotateReencrypts()
    {
        var root = StartupTests.TempDirectory();
        var data = Path.Combine(root, "data");
        const string oldKey = "cli-old-key-cli-old-key-cli-old-key-000000";
        const string newKey = "cli-new-key-cli-new-key-cli-new-key-000000";
        Directory.CreateDirectory(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var keyFile = Path.Combine(root, "id_ed25519");
        await File.WriteAllTextAsync(keyFile, ssh.ClientPrivateKey);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var cli = new CliRunner(Path.Combine(root, "cli"));
        var cliSettings = AgentHelpers.Settings();
        cliSettings["Covibe:Secrets:EncryptionKey"] = oldKey;
        await using (var server = await TestServer.StartAsync(dataDirectory: data, settings: cliSettings))
        {
            var url = server.Url.ToString().TrimEnd('/');
            (await cli.RunAsync(TestServer.Password, "team", "create", "--server", url, "--name", "Boxes", "--user-name", "Vic", "--email", "vic@example.com", "--password-stdin")).ExitCode.ShouldBe(0);
            string[] add = ["vm", "add", "build-box", "--host", "127.0.0.1", "--port", ssh.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--user", ssh.User, "--key-file", keyFile];
            var unconfirmed = await cli.RunAsync(null, add);
            unconfirmed.ExitCode.ShouldBe(1);
            unconfirmed.Stderr.ShouldContain(ssh.HostKeyFingerprint);
            unconfirmed.Stderr.ShouldContain("--host-key");
            var added = await cli.RunAsync(null, [.. add, "--host-key", ssh.HostKeyFingerprint]);
            added.ExitCode.ShouldBe(0, added.Stderr);
            added.Stdout.ShouldContain($"host key {ssh.HostKeyFingerprint} pinned");
            var list = await cli.RunAsync(null, "vm", "ls");
            list.Stdout.ShouldContain("build-box");
            list.Stdout.ShouldContain("online"); // its login was checked as it was added
            var check = await cli.RunAsync(null, "vm", "check", "build-box");
            check.ExitCode.ShouldBe(0, check.Stdout + check.Stderr);
            check.Stdout.ShouldContain("build-box is online.");
            var onVm = await cli.RunAsync(null, "agent", "spawn", "count", "--type", "lines", "--vm", "build-box", "--raw", "-f");
            onVm.ExitCode.ShouldBe(0, onVm.Stderr);
            onVm.Stdout.ShouldEndWith("19999\n20000\n");
            (await cli.RunAsync(null, "vm", "update", "build-box", "--name", "ci-box")).Stdout.ShouldContain("Updated ci-box.");
            (await cli.RunAsync(null, "vm", "add", "spare", "--host", "127.0.0.1", "--port", ssh.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--user", ssh.User, "--key-file", keyFile, "--host-key", ssh.HostKeyFingerprint)).ExitCode.ShouldBe(0);
            (await cli.RunAsync(null, "vm", "rm", "spare")).Stdout.ShouldContain("Removed.");
            var remaining = await cli.RunAsync(null, "vm", "ls");
            remaining.Stdout.ShouldContain("ci-box");
            remaining.Stdout.ShouldNotContain("spare");
        }
        var rotate = await cli.RunAsync(null, "secrets", "rotate", "--data", data,
            $"--Covibe:Secrets:EncryptionKey={newKey}", $"--Covibe:Secrets:PreviousKeys={oldKey}");
        rotate.ExitCode.ShouldBe(0, rotate.Stderr);
        rotate.Stdout.ShouldContain("Re-encrypted 1 credential(s)");
        // The server now starts with only the new key, and the VM is there.
        await using (var after = await TestServer.StartAsync(dataDirectory: data, settings: new Dictionary<string, string> { ["Covibe:Secrets:EncryptionKey"] = newKey }))
        {
            using var anon = after.Client();
            var auth = (await (await anon.PostAsJsonAsync("/api/auth/login", new LoginRequest("vic@example.com", TestServer.Password))).Content.ReadFromJsonAsync<AuthResponse>())!;
            using var client = after.Client(auth.AccessToken);
            (await client.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single().Name.ShouldBe("ci-box");
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        StartupTests.Delete(root);
    }

    [Fact]
    public async Task Check_LogsInOverSshWithTheStoredKey_AndReportsAChangedHostKey()
    {
        await using var server = await TestServer.StartAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var vm = (await (await client.PostAsJsonAsync("/api/vm/register", Request(ssh.HostKeyFingerprint))).Content.ReadFromJsonAsync<VmDto>())!;

        var checkedVm = (await (await client.PostAsync($"/api/vm/{vm.Id}/check", null)).Content.ReadFromJsonAsync<VmDto>())!;
        checkedVm.Status.ShouldBe("online", $"last error: {checkedVm.LastError}");
        checkedVm.LastSeen.ShouldNotBeNull();
        checkedVm.LastError.ShouldBeNull();
        using var teammate = server.Client(member.AccessToken);
        await (await teammate.PostAsync($"/api/vm/{vm.Id}/check", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await teammate.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single().Status.ShouldBe("online");
        // The connection is shared: a control socket stands ready for the next command.
        Directory.GetFileSystemEntries(Path.Combine(server.DataDirectory, "ssh"), "cm-*").ShouldNotBeEmpty();

        // Someone swaps the machine (here: the pinned key no longer matches): refused, and said so.
        await using (var db = await server.App.Services.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<Data.CovibeDb>>().CreateDbContextAsync())
        {
            var row = db.Vms.Single(v => v.Id == vm.Id);
            row.HostKeys = $"[127.0.0.1]:{ssh.Port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
            await db.SaveChangesAsync();
        }
        // (the shared connection was opened under the old pinned key: a changed pin opens a new one, which must verify it)
        var refused = (await (await client.PostAsync($"/api/vm/{vm.Id}/check", null)).Content.ReadFromJsonAsync<VmDto>())!;
        refused.Status.ShouldBe("offline");
        refused.LastError!.ShouldContain("not the one you confirmed");
    }

    [Fact]
    public async Task RemoteCommands_QuoteEveryArgument_SoNothingIsInjected()
    {
        var directory = StartupTests.TempDirectory();
        await using (var client = new Execution.Ssh.SshClient(directory))
        {
            var publicKey = await client.AddKeyAsync(Encoding.UTF8.GetBytes(ssh.ClientPrivateKey), TimeSpan.FromMinutes(5), CancellationToken.None);
            var keys = await Execution.Ssh.HostKeys.ScanAsync("127.0.0.1", ssh.Port, CancellationToken.None);
            var target = new Execution.Ssh.SshTarget("quoting", "127.0.0.1", ssh.Port, ssh.User, string.Join('\n', keys.Select(k => k.KnownHostsLine))) { PublicKey = publicKey };
            string[] hostile = ["$(id)", "; touch /tmp/pwn", "`touch /tmp/pwn`", "it's", "a\nb", "&& touch /tmp/pwn", "-oProxyCommand=touch /tmp/pwn", "../../etc/passwd"];
            var result = await client.RunAsync(target, ["printf", "%s|", .. hostile], null, TimeSpan.FromSeconds(20), CancellationToken.None);
            result.ExitCode.ShouldBe(0, result.Stderr);
            result.Stdout.ShouldBe(string.Concat(hostile.Select(h => h + "|")));
            var piped = await client.RunAsync(target, ["cat"], Encoding.UTF8.GetBytes("$(id) stays text"), TimeSpan.FromSeconds(20), CancellationToken.None);
            piped.Stdout.ShouldBe("$(id) stays text");
        }
        File.Exists("/tmp/pwn").ShouldBeFalse();
        // The key was only ever in the agent's memory.
        Directory.GetFiles(directory).Where(f => !Path.GetFileName(f).StartsWith("cm-", StringComparison.Ordinal) && !f.EndsWith(".sock", StringComparison.Ordinal))
            .ShouldAllBe(f => !File.ReadAllText(f).Contains("PRIVATE KEY"));
        StartupTests.Delete(directory);
    }

    private async Task<(TestServer Server, CreateTeamResponse Owner, VmDto Vm)> ServerWithVmAsync(string? data = null)
    {
        var settings = AgentHelpers.Settings();
        // On the VM, `claude` is the fake, found on the PATH the agent gets there.
        settings["Covibe:Agents:Types:claude:Environment:PATH"] = $"{ssh.ToolsDirectory}:/usr/local/bin:/usr/bin:/bin";
        ClaudeServerFixture.Bypass(settings);
        // The mock agent as installed on the VM.
        string[] mock = [ssh.Covibe, "mock-agent", "--task={task}", "--kind", "code-writer", "--delay-ms", "20", "--steps", "4"];
        for (var i = 0; i < mock.Length; i++)
        {
            settings[$"Covibe:Agents:Types:mock-vm:Command:{i}"] = mock[i];
        }
        var server = await TestServer.StartAsync(settings: settings, dataDirectory: data);
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var vm = (await (await client.PostAsJsonAsync("/api/vm/register", Request(ssh.HostKeyFingerprint))).Content.ReadFromJsonAsync<VmDto>())!;
        return (server, owner, vm);
    }

    private static async Task<AgentDto> SpawnOnAsync(TestServer server, string token, string vmId, string type, string task = "on the VM")
    {
        using var client = server.Client(token);
        using var reply = await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest(task, type, VmId: vmId));
        reply.StatusCode.ShouldBe(HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<AgentDto>())!;
    }

    [Fact]
    public async Task Terminal_OnYourVm_IsAShellThereOverSsh_ThatFollowsResizes()
    {
        var (server, owner, vm) = await ServerWithVmAsync();
        await using var serverScope = server;
        await using var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken);
        var created = await terminal.CreateAsync("on-vm", new { vm = vm.Id, cols = 90, rows = 20 });
        created.GetProperty("info").GetProperty("host").GetString().ShouldBe(vm.Name);
        await terminal.CommandAsync("on-vm", "echo who=$(whoami) size=$(stty size) tty=$(tty)");
        var output = await terminal.OutputUntilAsync("on-vm", $"who={ssh.User} size=20 90 tty=/dev/pts/", TimeSpan.FromSeconds(30));
        output.ShouldNotContain(TestServer.JwtSecret);

        await terminal.SendAsync(new { type = "session", action = "resize", id = "on-vm", config = new { cols = 132, rows = 43 } });
        await terminal.ReceiveAsync(m => TerminalClient.Is(m, "session", "resized"));
        await Task.Delay(300); // ssh passes the new size on as it gets SIGWINCH
        await terminal.CommandAsync("on-vm", "echo now=$(stty size)");
        await terminal.OutputUntilAsync("on-vm", "now=43 132", TimeSpan.FromSeconds(20));
        // A command's own cwd is a path on the VM (not confined to the server's terminal root).
        await terminal.SendAsync(new { type = "command", id = "c", session = "on-vm", command = "echo at=$(pwd) v=$V", cwd = "/tmp", env = new Dictionary<string, string> { ["V"] = "vm-side" } });
        await terminal.OutputUntilAsync("on-vm", "at=/tmp v=vm-side", TimeSpan.FromSeconds(20));

        // A teammate cannot open a terminal on someone else's VM.
        var mate = await server.JoinAsync(owner.Invite.InviteCode, "Miguel");
        await using var other = await TerminalClient.ConnectAsync(server.Url, "/terminal", mate.AccessToken);
        await other.SendAsync(new { type = "session", action = "create", id = "not-mine", config = new { vm = vm.Id } });
        await other.ErrorAsync("INVALID_VM");

        await terminal.SendAsync(new { type = "session", action = "close", id = "on-vm" });
        await terminal.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"), TimeSpan.FromSeconds(20));

        // The same from the command line.
        var cliDirectory = StartupTests.TempDirectory();
        try
        {
            var cli = new CliRunner(cliDirectory);
            (await cli.RunAsync(TestServer.Password, "login", "--server", server.Url.ToString().TrimEnd('/'), "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
            var run = await cli.RunAsync("echo cli-on-vm-$(whoami)\nexit", "terminal", "--vm", vm.Id);
            run.Stdout.ShouldContain($"cli-on-vm-{ssh.User}");
            run.ExitCode.ShouldBe(0, run.Stderr);
        }
        finally
        {
            StartupTests.Delete(cliDirectory);
        }
    }

    [Fact]
    public async Task AgentOnVm_RunsThereDetached_AndItsWholeOutputReachesTheTeam()
    {
        var (server, owner, vm) = await ServerWithVmAsync();
        await using var serverScope = server;
        await using var hub = await server.ConnectAsync(owner.Auth.AccessToken);
        await hub.ReceiveAsync("team_joined");
        var agent = await SpawnOnAsync(server, owner.Auth.AccessToken, vm.Id, "lines");
        await hub.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (viaHub, _, status) = await hub.CollectOutputAsync(agent.Id);
        status.ShouldBe("completed");
        var expected = string.Concat(Enumerable.Range(1, 20000).Select(i => $"{i}\n"));
        Encoding.UTF8.GetString(viaHub).ShouldBe(expected);
        Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).ShouldBe(expected);
        // It ran on the VM, as its user, with its log under ~/agent_logs (seed 001's layout).
        File.ReadAllText($"/home/{ssh.User}/agent_logs/{agent.Id}/output.log").ShouldBe(expected);
    }

    [Fact]
    public async Task AgentOnVm_TakesInputAndIsKilledByItsOwner()
    {
        var (server, owner, vm) = await ServerWithVmAsync();
        await using var serverScope = server;
        using var client = server.Client(owner.Auth.AccessToken);
        var agent = await SpawnOnAsync(server, owner.Auth.AccessToken, vm.Id, "echo");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).Contains("ready", StringComparison.Ordinal), "the agent is ready");
        (await client.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single().AgentsRunning.ShouldBe(1);
        (await client.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("$(id) over ssh\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).Contains("echo: $(id) over ssh", StringComparison.Ordinal), "the input is echoed as text");
        (await client.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("killed");
        (await client.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single().AgentsRunning.ShouldBe(0);

        // Seed 001's audit log of VM access: who registered it, started and controlled what on it; its owner reads it.
        var audit = (await client.GetFromJsonAsync<VmAuditDto[]>($"/api/vm/{vm.Id}/audit"))!;
        audit.Select(a => a.Action).Reverse().ShouldBe(["vm.register", "agent.start", "agent.input", "agent.kill"]);
        audit.ShouldAllBe(a => a.Actor == "member" && a.ActorName == "Sarah");
        audit[^1].Detail!.ShouldContain("login checked");
        audit.ShouldAllBe(a => !a.Detail!.Contains("PRIVATE KEY") && !a.Detail.Contains("$(id)")); // what was typed is not kept
        // An SSH VM has no runner to revoke or give a registration token to.
        await (await client.PostAsync($"/api/vm/{vm.Id}/revoke", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "not-a-runner-vm");
        await (await client.PostAsync($"/api/vm/{vm.Id}/registration-token", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "not-a-runner-vm");
    }

    [Fact]
    public async Task AgentOnVm_ConnectionDroppedMidStream_OutputResumesWithNoGapOrDuplicate()
    {
        var (server, owner, vm) = await ServerWithVmAsync();
        await using var serverScope = server;
        var agent = await SpawnOnAsync(server, owner.Auth.AccessToken, vm.Id, "slow");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).Contains("line 10\n", StringComparison.Ordinal), "some output");
        var pid = File.ReadAllText($"/home/{ssh.User}/agent_logs/{agent.Id}/holder").Length > 0 ? AgentPid(server, agent.Id) : 0;
        // Cut the shared SSH connection (the control master and every session on it).
        await server.App.Services.GetRequiredService<Execution.Ssh.SshClient>().CloseAsync(new Execution.Ssh.SshTarget(vm.Id, "127.0.0.1", ssh.Port, ssh.User, ""), CancellationToken.None);
        File.Exists($"/proc/{pid}/stat").ShouldBeTrue("the agent keeps running on the VM while the server is cut off");
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
        Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id))
            .ShouldBe(string.Concat(Enumerable.Range(1, 60).Select(i => $"line {i}\n")));
    }

    [Fact]
    public async Task FakeClaudeOnVm_ReportsCostAndEvents_TaskTextNeverRunsAsShell_AndNoKeyOnTheServersDisk()
    {
        var data = StartupTests.TempDirectory();
        var (server, owner, vm) = await ServerWithVmAsync(data);
        await using (server)
        {
            const string hostile = "[[lines=2]] $(touch /tmp/pwn) `touch /tmp/pwn`; touch /tmp/pwn";
            var agent = await SpawnOnAsync(server, owner.Auth.AccessToken, vm.Id, "claude", hostile);
            var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
            done.ShouldSatisfyAllConditions(d => d.Status.ShouldBe("completed"), d => d.CostUsd.ShouldBe(0.0125), d => d.Model.ShouldBe("claude-fake-1"));
            using var client = server.Client(owner.Auth.AccessToken);
            var events = (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=100"))!;
            events.Events.First(e => e.Kind == "text").Text!.ShouldContain("$(touch /tmp/pwn) `touch /tmp/pwn`; touch /tmp/pwn");
            events.Events.ShouldContain(e => e.Kind == "tool_use" && e.Tool == "Bash");
            File.Exists("/tmp/pwn").ShouldBeFalse();
        }
        await DiskScan.ShouldNotHoldAsync(data, ssh.ClientPrivateKey.Split('\n')[1]);
        StartupTests.Delete(data);
    }

    private static int AgentPid(TestServer server, string agentId)
    {
        using var db = server.App.Services.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<Data.CovibeDb>>().CreateDbContext();
        return db.Agents.Single(a => a.Id == agentId).Pid!.Value;
    }

    [Fact]
    public async Task AgentOnVm_SurvivesAServerRestart_AndClonesTheRepositoryThere()
    {
        var data = StartupTests.TempDirectory();
        // A repository the VM user can read, cloned on the VM into the agent's workspace.
        var repo = Path.Combine(ssh.ToolsDirectory, "repo-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(repo);
        foreach (var args in new[] { new[] { "init", "-q", "-b", "main" }, ["add", "."], ["commit", "-q", "-m", "init"] })
        {
            if (args[0] == "add")
            {
                File.WriteAllText(Path.Combine(repo, "README.md"), "on the VM\n");
            }
            using var git = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("git", ["-C", repo, "-c", "user.name=T", "-c", "user.email=t@example.com", .. args]))!;
            await git.WaitForExitAsync();
        }
        // The VM user owns its repository (git refuses to read repositories of other owners).
        using (var chown = System.Diagnostics.Process.Start("chown", ["-R", ssh.User, repo]))
        {
            await chown.WaitForExitAsync();
        }
        string agentId, token;
        var (first, owner, vm) = await ServerWithVmAsync(data);
        await using (first)
        {
            token = owner.Auth.AccessToken;
            using var client = first.Client(token);
            using var reply = await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("survive", "slow", $"file://{repo}", "main", VmId: vm.Id));
            agentId = (await reply.Content.ReadFromJsonAsync<AgentDto>())!.Id;
            await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await first.OutputAsync(token, agentId)).Contains("line 5\n", StringComparison.Ordinal), "some output");
        }
        await using (var second = await TestServer.StartAsync(settings: AgentHelpers.Settings(), dataDirectory: data))
        {
            (await second.WaitFinishedAsync(token, agentId)).Status.ShouldBe("completed");
            var output = Encoding.UTF8.GetString(await second.OutputAsync(token, agentId));
            output.ShouldContain("Cloning into");
            output.ShouldEndWith(string.Concat(Enumerable.Range(1, 60).Select(i => $"line {i}\n")));
            output.ShouldBe(File.ReadAllText($"/home/{ssh.User}/agent_logs/{agentId}/output.log"));
            File.ReadAllText($"/home/{ssh.User}/project/{agentId}/README.md").ShouldBe("on the VM\n");
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        StartupTests.Delete(data);
    }

    [Fact]
    public async Task PasswordVm_IsCheckedAndRunsAgents_WithThePasswordNeverOnDisk()
    {
        ssh.Password.ShouldNotBeNull("the password tests make their own VM user, which needs root");
        var data = StartupTests.TempDirectory();
        await using (var server = await TestServer.StartAsync(settings: AgentHelpers.Settings(), dataDirectory: data))
        {
            var owner = await server.CreateTeamAsync();
            using var client = server.Client(owner.Auth.AccessToken);
            using var registered = await client.PostAsJsonAsync("/api/vm/register",
                new RegisterVmRequest("pw-box", "127.0.0.1", ssh.Port, ssh.User, Password: ssh.Password, HostKeyFingerprint: ssh.HostKeyFingerprint));
            registered.StatusCode.ShouldBe(HttpStatusCode.Created, await registered.Content.ReadAsStringAsync());
            var vm = (await registered.Content.ReadFromJsonAsync<VmDto>())!;
            vm.AuthMethod.ShouldBe("password");
            var checkedVm = (await (await client.PostAsync($"/api/vm/{vm.Id}/check", null)).Content.ReadFromJsonAsync<VmDto>())!;
            checkedVm.Status.ShouldBe("online", $"last error: {checkedVm.LastError}");
            var agent = await SpawnOnAsync(server, owner.Auth.AccessToken, vm.Id, "lines");
            (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
            Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).ShouldEndWith("19999\n20000\n");

            // A wrong password is refused as it is given, and the one that works is kept.
            using var wrong = await client.PutAsJsonAsync("/api/vm/update", new UpdateVmRequest(vm.Id, Password: "not-the-password"));
            (await wrong.ShouldBeProblemAsync((HttpStatusCode)422, "vm-login-failed")).GetProperty("detail").GetString()!.ShouldContain("refused the credential");
            (await (await client.PostAsync($"/api/vm/{vm.Id}/check", null)).Content.ReadFromJsonAsync<VmDto>())!.Status.ShouldBe("online");
        }
        await DiskScan.ShouldNotHoldAsync(data, ssh.Password);
        StartupTests.Delete(data);
    }

    [Fact]
    public async Task MockAgentOnVm_RunsEndToEnd()
    {
        var (server, owner, vm) = await ServerWithVmAsync();
        await using var serverScope = server;
        var agent = await SpawnOnAsync(server, owner.Auth.AccessToken, vm.Id, "mock-vm", "Write the login form");
        var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.ShouldSatisfyAllConditions(d => d.Status.ShouldBe("completed"), d => d.Model.ShouldBe("covibe-mock-1"), d => d.CostUsd.ShouldNotBeNull());
        using var client = server.Client(owner.Auth.AccessToken);
        var events = (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=100"))!;
        events.Events.ShouldContain(e => e.Kind == "tool_use" && e.Tool == "Write");
        events.Events[0].Text.ShouldBe($"/home/{ssh.User}/project/{agent.Id}");
    }

    [Fact]
    public async Task Spawn_OnSomeoneElsesVm_IsRefused()
    {
        var (server, owner, vm) = await ServerWithVmAsync();
        await using var serverScope = server;
        var member = await server.JoinAsync(owner.Invite.InviteCode, "Mallory");
        using var client = server.Client(member.AccessToken);
        using var reply = await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("borrow it", "lines", VmId: vm.Id));
        (await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation")).GetProperty("errors").TryGetProperty("vmId", out _).ShouldBeTrue();
    }

    [Fact]
    public void SecretBox_CiphertextOfOneUserOrPurpose_DoesNotOpenForAnother()
    {
        var box = new SecretBox(Options.Create(new SecretsOptions { EncryptionKey = TestServer.EncryptionKey }));
        var envelope = box.Seal("a private key"u8, "user-a", "vm-credential:vm-1");
        Encoding.UTF8.GetString(box.Open(envelope, "user-a", "vm-credential:vm-1")).ShouldBe("a private key");
        Should.Throw<CryptographicException>(() => box.Open(envelope, "user-b", "vm-credential:vm-1"));
        Should.Throw<CryptographicException>(() => box.Open(envelope, "user-a", "vm-credential:vm-2"));
        var tampered = envelope[..^4] + (envelope[^4] == 'A' ? "B" : "A") + envelope[^3..];
        Should.Throw<CryptographicException>(() => box.Open(tampered, "user-a", "vm-credential:vm-1"));
        var otherKey = new SecretBox(Options.Create(new SecretsOptions { EncryptionKey = "another-key-another-key-another-key-0000" }));
        Should.Throw<CryptographicException>(() => otherKey.Open(envelope, "user-a", "vm-credential:vm-1")).Message.ShouldContain(SecretBox.KeyIdOf(envelope)!);
    }

    [Fact]
    public async Task Rotation_ReencryptsEveryCredential_OldKeyReadsMeanwhile_UnknownKeyStopsStartup()
    {
        var data = StartupTests.TempDirectory();
        const string oldKey = "old-key-old-key-old-key-old-key-0123456789";
        const string newKey = "new-key-new-key-new-key-new-key-0123456789";
        await using var push = await LocalPushService.StartAsync();
        Dictionary<string, string> Keys(string current, string? previous = null)
        {
            var settings = new Dictionary<string, string> { ["Covibe:Secrets:EncryptionKey"] = current, ["Covibe:Push:AllowPrivateEndpoints"] = "true" };
            if (previous is not null)
            {
                settings["Covibe:Secrets:PreviousKeys"] = previous;
            }
            return settings;
        }
        string token;
        await using (var first = await TestServer.StartAsync(dataDirectory: data, settings: Keys(oldKey)))
        {
            token = (await first.CreateTeamAsync()).Auth.AccessToken;
            using var client = first.Client(token);
            (await client.PostAsJsonAsync("/api/vm/register", Request(ssh.HostKeyFingerprint, "one"))).StatusCode.ShouldBe(HttpStatusCode.Created);
            (await client.PostAsJsonAsync("/api/vm/register", Request(ssh.HostKeyFingerprint, "two"))).StatusCode.ShouldBe(HttpStatusCode.Created);
            // Web Push keeps secrets too: the server's VAPID key (made when first asked for) and a browser's subscription.
            (await client.GetFromJsonAsync<PushKeyResponse>("/api/push/key")).ShouldNotBeNull();
            (await client.PostAsJsonAsync("/api/push/subscriptions", push.Subscribe("phone"))).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        }

        await using (var second = await TestServer.StartAsync(dataDirectory: data, settings: Keys(newKey, oldKey)))
        {
            var box = second.App.Services.GetRequiredService<SecretBox>();
            var secrets = second.App.Services.GetRequiredService<SealedSecrets>();
            (await secrets.RotateAsync(CancellationToken.None)).ShouldBe(4, "two VM credentials, a push subscription, the VAPID key");
            (await secrets.RotateAsync(CancellationToken.None)).ShouldBe(0);
            await using var db = await second.App.Services.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<Data.CovibeDb>>().CreateDbContextAsync();
            foreach (var vm in db.Vms)
            {
                SecretBox.KeyIdOf(vm.Credential).ShouldBe(box.CurrentKeyId);
                Encoding.UTF8.GetString(box.Open(vm.Credential, vm.UserId, $"vm-credential:{vm.Id}")).ShouldBe(ssh.ClientPrivateKey.Trim() + "\n");
            }
        }

        await using (var third = await TestServer.StartAsync(dataDirectory: data, settings: Keys(newKey)))
        {
            using var client = third.Client(token);
            (await client.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Length.ShouldBe(2);
            // The subscription and the VAPID key open with the new key alone: a test notification is sent, signed, decrypted.
            (await client.PostAsync("/api/push/test", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            (await push.ReceiveAsync(d => d.Browser == "phone")).Message.GetProperty("body").GetString().ShouldBe("Notifications reach this device.");
        }

        var error = await Should.ThrowAsync<OptionsValidationException>(() =>
            TestServer.StartAsync(dataDirectory: data, settings: new Dictionary<string, string> { ["Covibe:Secrets:EncryptionKey"] = oldKey }));
        error.Message.ShouldContain("ENCRYPTION_KEYS_PREVIOUS");
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        StartupTests.Delete(data);
    }
}
