using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// The wall between teams and the server, tried from where an attacker stands: a member's agent
/// and a member's terminal on the server's own machine (sandboxed by default), reaching for the
/// server's keys, database, process and another team's workspace.
/// </summary>
public sealed class IsolationTests : IDisposable
{
    private const string JwtSecret = "isolation-jwt-secret-0123456789-abcdefghijklmnop";
    private const string EncryptionKey = "isolation-encryption-key-0123456789-abcdefghijk";
    private const string SignupToken = "isolation-signup-token-0123456789";
    private const string TeamBSecret = "team-b-private-plans-4242";

    // Every way out we know of: the data directory by path, the server's /proc, another team's
    // workspace by path and through "..", symlinks, and a search of the whole tree.
    internal const string Probe = """
        set -- $1
        D=$1; W=$2; B=$3; P=$4
        echo "uid=$(id -u)"
        for f in "$D/jwt-secret" "$D/encryption-key" "$D/covibe.db" "$D/signup-token" "/proc/$P/environ" "/proc/$P/cmdline" \
                 "$W/$B/secret.txt" "/workspace/../$B/secret.txt" "/proc/1/root$D/covibe.db" "/proc/$P/root$D/jwt-secret"; do
          printf '%s: ' "$f"; head -c 300 "$f" 2>&1; echo
        done
        ls -la "$D" "$W" "$W/$B" /workspace/.. 2>&1
        for p in /proc/[0-9]*; do tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -a -e JWT_SECRET -e ENCRYPTION_KEY -e SIGNUP; done
        ln -s "$D/jwt-secret" /workspace/leak 2>&1; cat /workspace/leak 2>&1
        find / -xdev \( -name covibe.db -o -name jwt-secret -o -name secret.txt \) 2>/dev/null
        echo probe-done
        """;

    private readonly string _data = StartupTests.TempDirectory();

    [Fact]
    public async Task AgentsAndTerminals_OnTheServersMachine_CannotReachItsSecretsItsProcessOrAnotherTeam()
    {
        var port = PostgresServer.FreePort();
        var url = $"http://127.0.0.1:{port}";
        var cli = new CliRunner(Path.Combine(_data, "cli"));
        // A production server: secrets from the environment, signup by the operator's token.
        using var server = cli.Start(["serve", "--data", _data, "--urls", url, "--Covibe:Auth:PasswordIterations=100000",
            "--Covibe:Agents:Types:probe:Command:0=sh", "--Covibe:Agents:Types:probe:Command:1=-c", $"--Covibe:Agents:Types:probe:Command:2={Probe}",
            "--Covibe:Agents:Types:probe:Command:3=probe", "--Covibe:Agents:Types:probe:Command:4={task}",
            "--Covibe:Agents:Types:keep:Command:0=sh", "--Covibe:Agents:Types:keep:Command:1=-c",
            "--Covibe:Agents:Types:keep:Command:2=printf '%s\\n' \"$1\" > /workspace/secret.txt", "--Covibe:Agents:Types:keep:Command:3=keep", "--Covibe:Agents:Types:keep:Command:4={task}"],
            environment: new Dictionary<string, string?> { ["JWT_SECRET"] = JwtSecret, ["ENCRYPTION_KEY"] = EncryptionKey, ["COVIBE_SIGNUP_TOKEN"] = SignupToken });
        try
        {
            await AgentRestartTests.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };

            // Signup is the operator's: no token or a wrong one is refused, saying what is needed.
            var refused = await http.PostAsJsonAsync("/api/team/create", new CreateTeamRequest("A", "Ann", "ann@example.com", TestServer.Password));
            (await refused.ShouldBeProblemAsync(HttpStatusCode.Forbidden, "signup-token-required")).GetProperty("detail").GetString()!.ShouldContain("signup token");
            var wrong = await http.PostAsJsonAsync("/api/team/create", new CreateTeamRequest("A", "Ann", "ann@example.com", TestServer.Password, "guess"));
            await wrong.ShouldBeProblemAsync(HttpStatusCode.Forbidden, "signup-token-required");
            var teamA = await CreateAsync(http, "A", "ann@example.com");
            var teamB = await CreateAsync(http, "B", "bob@example.com");

            // Team B keeps something in its workspace.
            var kept = await SpawnAsync(http, teamB, TeamBSecret, "keep");
            await WaitFinishedAsync(http, teamB, kept.Id);
            File.ReadAllText(Path.Combine(_data, "workspaces", teamB.Auth.Team.Id, "secret.txt")).ShouldContain(TeamBSecret);

            var target = $"{_data} {Path.Combine(_data, "workspaces")} {teamB.Auth.Team.Id} {server.Id}";
            var probe = await SpawnAsync(http, teamA, target, "probe");
            (await WaitFinishedAsync(http, teamA, probe.Id)).Status.ShouldBe("completed");
            var agentOutput = await OutputAsync(http, teamA, probe.Id);
            agentOutput.ShouldContain("probe-done");
            AssertNothingLeaked(agentOutput);

            // The same from a terminal of team A's owner.
            var annCli = new CliRunner(Path.Combine(_data, "ann"));
            var login = await annCli.RunAsync(TestServer.Password, "login", "--server", url, "--email", "ann@example.com", "--password-stdin");
            login.ExitCode.ShouldBe(0, login.Stderr);
            var script = Probe.Replace("set -- $1\n", "", StringComparison.Ordinal).Replace("D=$1; W=$2; B=$3; P=$4",
                $"D={_data}; W={Path.Combine(_data, "workspaces")}; B={teamB.Auth.Team.Id}; P={server.Id}", StringComparison.Ordinal);
            var terminal = await annCli.RunAsync(script + "\nexit 0", "terminal", "--shell", "/bin/sh");
            terminal.Stdout.ShouldContain("probe-done");
            AssertNothingLeaked(terminal.Stdout);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task AnAgentPlantingSymlinksAndFifosInItsRuntimeDirectory_GetsNothingOfTheServersAndStopsNothing()
    {
        var outside = StartupTests.TempDirectory();
        Directory.CreateDirectory(outside);
        var hostFile = Path.Combine(outside, "host-secret.txt");
        File.WriteAllText(hostFile, "HOST-ONLY-7731\n");
        try
        {
            var settings = AgentHelpers.Settings();
            // Replace its log with a symlink to a file of the server's, and its exit file with a FIFO (a reader that follows or blocks would leak or hang).
            settings["Covibe:Agents:Types:planter:Command:0"] = "sh";
            settings["Covibe:Agents:Types:planter:Command:1"] = "-c";
            settings["Covibe:Agents:Types:planter:Command:2"] =
                "printf 'before\\n'; sleep 1.5; rm -f /covibe/output.log; ln -s \"$1\" /covibe/output.log; mkfifo /covibe/exit; " +
                "sleep 1; rm -f /covibe/exit; printf 'after\\n'";
            settings["Covibe:Agents:Types:planter:Command:3"] = "planter";
            settings["Covibe:Agents:Types:planter:Command:4"] = "{task}";
            await using var server = await TestServer.StartAsync(settings: settings);
            var owner = await server.CreateTeamAsync();
            var agent = await server.SpawnAsync(owner.Auth.AccessToken, hostFile, "planter");
            var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30));
            done.Status.ShouldBe("completed");
            // "before" was followed live; the log it then replaced by a symlink reads as nothing, never as the server's file.
            done.OutputBytes.ShouldBe("before\n".Length);
            var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
            output.ShouldNotContain("HOST-ONLY");
            using var client = server.Client(owner.Auth.AccessToken);
            var events = await client.GetStringAsync($"/api/agent/{agent.Id}/events");
            events.ShouldNotContain("HOST-ONLY");
        }
        finally
        {
            StartupTests.Delete(outside);
        }
    }

    [Fact]
    public async Task Startup_WithoutASandbox_IsRefusedNamingTheSetting_UnlessTheOperatorOptsOut()
    {
        var missing = new Dictionary<string, string> { ["Covibe:Isolation:Bubblewrap"] = "/nonexistent/bwrap" };
        var error = await Should.ThrowAsync<Exception>(() => TestServer.StartAsync(settings: missing));
        error.Message.ShouldContain("Covibe:Isolation:HostExecution");
        error.Message.ShouldContain("bubblewrap");

        var optedOut = new Dictionary<string, string>(AgentHelpers.Settings())
        {
            ["Covibe:Isolation:Bubblewrap"] = "/nonexistent/bwrap",
            ["Covibe:Isolation:HostExecution"] = "unsandboxed",
            ["Covibe:Agents:Types:whoami:Command:0"] = "sh",
            ["Covibe:Agents:Types:whoami:Command:1"] = "-c",
            ["Covibe:Agents:Types:whoami:Command:2"] = "echo uid=$(id -u) at=$(pwd)",
        };
        await using var server = await TestServer.StartAsync(settings: optedOut);
        var owner = await server.CreateTeamAsync();
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "who am i", "whoami");
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        // Unsandboxed, the agent works in the team's workspace on this machine's own paths, as the server's user.
        var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        if (Environment.UserName == "root")
        {
            output.ShouldContain("uid=0");
        }
        output.ShouldContain($"at={Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id, agent.Id)}");
    }

    [Fact]
    public async Task Terminald_AShellOfItsOwnUser_CannotReadItsEnvironmentOrMemory()
    {
        if (Environment.UserName != "root")
        {
            return; // needs to start terminald as another user (nobody); CI runs as root
        }
        var root = Directory.CreateTempSubdirectory("covibe-terminald-user-").FullName;
        using (var chown = Process.Start("chown", ["65534:65534", root])!)
        {
            await chown.WaitForExitAsync();
        }
        var port = PostgresServer.FreePort();
        var info = new ProcessStartInfo("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "dotnet", CliRunner.Dll, "terminald"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = root,
        };
        info.Environment.Clear();
        foreach (var (key, value) in new Dictionary<string, string>
        {
            ["PATH"] = "/usr/bin:/bin", ["HOME"] = root, ["DOTNET_NOLOGO"] = "1", ["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["HOST"] = "127.0.0.1", ["JWT_SECRET"] = TestTerminald.Secret, ["TERMINAL_ROOT"] = root,
        })
        {
            info.Environment[key] = value;
        }
        using var daemon = Process.Start(info)!;
        try
        {
            var url = $"http://127.0.0.1:{port}";
            await AgentRestartTests.WaitHealthyAsync(url);
            await using var client = await TerminalClient.ConnectAsync(new Uri(url), "/", TestTerminald.Token());
            await client.CreateAsync("mine", new { shell = "/bin/sh" });
            // The shell runs as the daemon's own user (unprivileged, its sandbox in a user namespace): it could otherwise read
            // the daemon's secret and forge anyone's token.
            await client.CommandAsync("mine", $"echo as=$(id -u); tr '\\0' '\\n' < /proc/{daemon.Id}/environ; head -c 64 /proc/{daemon.Id}/mem; echo checked-$((6*7))");
            var output = await client.OutputUntilAsync("mine", "checked-42");
            output.ShouldContain("as=65534");
            output.ShouldContain("No such file or directory", customMessage: "the daemon's process does not exist in the shell's sandbox");
            output.ShouldNotContain(TestTerminald.Secret);
        }
        finally
        {
            daemon.Kill(entireProcessTree: true);
            await daemon.WaitForExitAsync();
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Terminald_SandboxesItsShells_TheyReachNeitherTheDaemonsFilesNorItsProcessNorThisMachinesLoopback()
    {
        // A file of the daemon's machine outside the terminal root, readable by anyone; a service on this machine's loopback.
        var outside = Directory.CreateTempSubdirectory("covibe-terminald-outside-").FullName;
        var secret = Path.Combine(outside, "secret.txt");
        await File.WriteAllTextAsync(secret, "outside-secret-5e1f");
        File.SetUnixFileMode(outside, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(secret, (UnixFileMode)0b110_100_100);
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var accepted = listener.AcceptTcpClientAsync();
        await using var daemon = await TestTerminald.StartAsync();
        try
        {
            await using var client = await daemon.ConnectAsync();
            await client.CreateAsync("walled", new { shell = "/bin/bash" });
            await client.CommandAsync("walled", $"echo as=$(id -u); cat {secret}; tr '\\0' '\\n' < /proc/{Environment.ProcessId}/environ; " +
                $"(exec 3<>/dev/tcp/127.0.0.1/{port} && echo loopback=$((3*7))); echo hi > made-here && echo made=$((2+3)); echo checked-$((6*7))");
            var output = await client.OutputUntilAsync("walled", "checked-42", TimeSpan.FromSeconds(30));
            output.ShouldContain(Environment.UserName == "root" ? "as=10001" : $"as={Execution.CurrentProcess.User.Uid}");
            output.ShouldNotContain("outside-secret-5e1f");
            output.ShouldNotContain(TestTerminald.Secret);
            output.ShouldContain($"{secret}: No such file or directory");
            output.ShouldContain($"/proc/{Environment.ProcessId}/environ: No such file or directory");
            output.ShouldContain("made=5", customMessage: "the terminal root is the shell's to write");
            File.Exists(Path.Combine(daemon.Root, "made-here")).ShouldBeTrue();
            if (Environment.UserName == "root")
            {
                output.ShouldNotContain("loopback=21");
                accepted.IsCompleted.ShouldBeFalse("nothing connected to this machine's loopback service");
            }
        }
        finally
        {
            listener.Stop();
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task Terminald_WithoutAWorkingSandbox_RefusesToStartSayingHow_UnlessTheOperatorOptsOut()
    {
        if (Environment.UserName != "root")
        {
            return; // the unwritable root is about the sandbox user of a root daemon; CI runs as root
        }
        // A terminal root the sandbox user cannot write: the daemon says how to fix it, or how to opt out.
        var root = Directory.CreateTempSubdirectory("covibe-terminald-root-").FullName;
        try
        {
            var variables = new System.Collections.Hashtable { ["PORT"] = "0", ["HOST"] = "127.0.0.1", ["JWT_SECRET"] = TestTerminald.Secret, ["TERMINAL_ROOT"] = root };
            var refused = Should.Throw<InvalidOperationException>(() => Terminals.TerminalDaemon.Build([], variables));
            refused.Message.ShouldContain($"chown -R 10001:10001 {root}");
            refused.Message.ShouldContain("TERMINAL_SANDBOX=off");

            // Opted out, explicitly: shells run as the daemon's own user, which the log says at start.
            await using var unsandboxed = await TestTerminald.StartAsync(new Dictionary<string, string> { ["TERMINAL_SANDBOX"] = "off" });
            await using var client = await unsandboxed.ConnectAsync();
            await client.CreateAsync("open", new { shell = "/bin/sh" });
            await client.CommandAsync("open", "echo as=$(id -u) n=$((6*7))");
            await client.OutputUntilAsync("open", "as=0 n=42");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void AssertNothingLeaked(string output)
    {
        output.ShouldNotContain(JwtSecret);
        output.ShouldNotContain(EncryptionKey);
        output.ShouldNotContain(SignupToken);
        output.ShouldNotContain(TeamBSecret);
        output.ShouldNotContain("SQLite format 3");
        if (Environment.UserName == "root")
        {
            output.ShouldContain("uid=10001"); // not root, even inside
        }
    }

    private static async Task<CreateTeamResponse> CreateAsync(HttpClient http, string team, string email)
    {
        using var reply = await http.PostAsJsonAsync("/api/team/create", new CreateTeamRequest(team, team + " owner", email, TestServer.Password, SignupToken));
        reply.StatusCode.ShouldBe(HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<CreateTeamResponse>())!;
    }

    private static async Task<AgentDto> SpawnAsync(HttpClient http, CreateTeamResponse team, string task, string type)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/agent/spawn") { Content = JsonContent.Create(new SpawnAgentRequest(task, type)) };
        request.Headers.Authorization = new("Bearer", team.Auth.AccessToken);
        using var reply = await http.SendAsync(request);
        reply.StatusCode.ShouldBe(HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<AgentDto>())!;
    }

    private static Task<AgentDto> WaitFinishedAsync(HttpClient http, CreateTeamResponse team, string id) =>
        Eventually.UntilAsync(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/agent/{id}");
            request.Headers.Authorization = new("Bearer", team.Auth.AccessToken);
            using var reply = await http.SendAsync(request);
            return (await reply.Content.ReadFromJsonAsync<AgentDto>())!;
        }, a => AgentStatuses.IsFinal(a.Status), $"agent {id} finishes", TimeSpan.FromSeconds(60));

    private static async Task<string> OutputAsync(HttpClient http, CreateTeamResponse team, string id)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/agent/{id}/output");
        request.Headers.Authorization = new("Bearer", team.Auth.AccessToken);
        using var reply = await http.SendAsync(request);
        return await reply.Content.ReadAsStringAsync();
    }

    public void Dispose() => StartupTests.Delete(_data);
}
