using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary><c>covibe terminald</c> as a daemon: the seed's client, limits, timeouts, process hygiene, the orchestrator.</summary>
public sealed class TerminalDaemonTests
{
    private static readonly object Sh = new { shell = "/bin/sh" };

    [Fact]
    public async Task SeedPythonClient_AsWritten_RunsItsCommand()
    {
        await using var daemon = await TestTerminald.StartAsync();
        File.WriteAllText(Path.Combine(daemon.Root, "seed-004-was-here"), "");
        var script = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "seed-004", "client.py"))
            .Replace("ws://localhost:8787", $"ws://{daemon.Url.Authority}", StringComparison.Ordinal)
            .Replace("your_jwt_token", TestTerminald.Token(), StringComparison.Ordinal);
        var path = Path.Combine(daemon.Root, "client.py");
        File.WriteAllText(path, script);

        var info = new ProcessStartInfo("/usr/bin/python3", ["-u", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var python = Process.Start(info)!;
        try
        {
            var seen = new System.Text.StringBuilder();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (!seen.ToString().Contains("seed-004-was-here", StringComparison.Ordinal))
            {
                var line = await python.StandardOutput.ReadLineAsync(timeout.Token)
                    ?? throw new InvalidOperationException($"The seed's client ended: {seen}{await python.StandardError.ReadToEndAsync()}");
                seen.AppendLine(line);
            }
            seen.ToString().ShouldContain("client.py");
        }
        finally
        {
            python.Kill();
        }
    }

    [Fact]
    public async Task SeedJavaScriptClient_ItsClass_RunsACommandWithHeaderAuth()
    {
        await using var daemon = await TestTerminald.StartAsync();
        var assets = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "assets", "seed-004"));
        var info = new ProcessStartInfo("node", [Path.Combine(AppContext.BaseDirectory, "seed-004", "client.js"), $"ws://{daemon.Url.Authority}", TestTerminald.Token(), "echo js-$((6*7))", "js-42"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["NODE_PATH"] = Path.Combine(assets, "node_modules");
        using var node = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stdout = node.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = node.StandardError.ReadToEndAsync(timeout.Token);
        await node.WaitForExitAsync(timeout.Token);
        node.ExitCode.ShouldBe(0, await stderr);
        (await stdout).ShouldContain("js-42");
    }

    [Fact]
    public async Task SessionTimeout_ASessionNobodyWatches_IsHungUp()
    {
        await using var daemon = await TestTerminald.StartAsync(new Dictionary<string, string> { ["SESSION_TIMEOUT"] = "1" });
        var client = await daemon.ConnectAsync();
        await client.CreateAsync("idle", Sh);
        var pid = daemon.Manager.Find("idle")!.ProcessId;
        await Task.Delay(1500);
        daemon.Manager.Find("idle").ShouldNotBeNull("a watched session stays open");
        await client.DisposeAsync();
        await Eventually.UntilAsync(() => Task.FromResult(daemon.Manager.Find("idle") is null), "the unwatched session is closed", TimeSpan.FromSeconds(10));
        Directory.Exists($"/proc/{pid}").ShouldBeFalse();
    }

    [Fact]
    public async Task Stopping_SaysGoodbyeToClients_AndHangsUpEveryShell()
    {
        var daemon = await TestTerminald.StartAsync();
        await using var client = await daemon.ConnectAsync();
        await client.CreateAsync("until-stop", Sh);
        var pid = daemon.Manager.Find("until-stop")!.ProcessId;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await daemon.DisposeAsync();
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10), "no waiting out the host's 30 s shutdown timeout");
        (await client.Socket.Closed).Status.ShouldBe(WebSocketCloseStatus.EndpointUnavailable);
        Directory.Exists($"/proc/{pid}").ShouldBeFalse();
    }

    [Fact]
    public async Task Input_ToAProgramThatDoesNotRead_FailsAfterAWhile_AndTheConnectionStaysUsable()
    {
        await using var daemon = await TestTerminald.StartAsync();
        await using var client = await daemon.ConnectAsync();
        await client.CreateAsync("stuck", Sh);
        await client.CreateAsync("other", Sh);
        await client.CommandAsync("stuck", "sleep 60");
        await Task.Delay(300);
        // Pasted lines the program never reads fill the terminal's input (about 70 KB here).
        var paste = string.Concat(Enumerable.Repeat(new string('p', 99) + "\n", 95));
        for (var i = 0; i < 9; i++)
        {
            await client.InputAsync("stuck", paste);
        }
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var error = await client.ReceiveAsync("error", TimeSpan.FromSeconds(20));
        error.GetProperty("code").GetString().ShouldBe("COMMAND_FAILED", error.ToString());
        error.GetProperty("error").GetString()!.ShouldContain("not read its input");
        // Later input to it fails at once instead of each waiting again...
        await client.InputAsync("stuck", paste);
        await client.ErrorAsync("COMMAND_FAILED");
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(12));
        // ...and the connection, its other sessions and closing the stuck one all work.
        await client.CommandAsync("other", "echo fine-$((1+1))");
        await client.OutputUntilAsync("other", "fine-2");
        await client.SendAsync(new { type = "session", action = "close", id = "stuck" });
        await client.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"));
    }

    [Fact]
    public async Task AllowedOrigins_LetThatConsoleIn_AndNoOther()
    {
        await using var daemon = await TestTerminald.StartAsync(new Dictionary<string, string> { ["ALLOWED_ORIGINS"] = "http://console.example:3001, https://other.example" });
        await using (var console = await daemon.ConnectAsync(origin: "http://console.example:3001"))
        {
            await console.ReceiveAsync("ready");
        }
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Authorization", $"Bearer {TestTerminald.Token()}");
        socket.Options.SetRequestHeader("Origin", "http://console.example:3002");
        await Should.ThrowAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://{daemon.Url.Authority}/"), CancellationToken.None));
        socket.HttpStatusCode.ShouldBe(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Flood_BeyondTheMessageRate_IsRefused_AndTheConnectionRecovers()
    {
        await using var daemon = await TestTerminald.StartAsync(null, "--Covibe:Terminals:MessagesPerSecond=20");
        await using var client = await daemon.ConnectAsync();
        await client.CreateAsync("flood", Sh);
        for (var i = 0; i < 100; i++)
        {
            await client.SendAsync(new { type = "session", action = "list" });
        }
        (await client.ErrorAsync("RATE_LIMITED")).GetProperty("error").GetString()!.ShouldContain("20 a second");
        await Task.Delay(1500);
        await client.CommandAsync("flood", "echo after-flood-$((1+1))");
        await client.OutputUntilAsync("flood", "after-flood-2");
    }

    [Fact]
    public async Task Limits_AboveWhatTheServerMayHave_AreLoweredToIt_AndTheShellStillStarts()
    {
        var hard = File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[4];
        await using var daemon = await TestTerminald.StartAsync(null, "--Covibe:Terminals:MaxOpenFiles=1048576");
        await using var client = await daemon.ConnectAsync();
        await client.CreateAsync("limits", Sh);
        await client.CommandAsync("limits", "echo nofile=$(ulimit -n)-$((1+1))");
        var expected = hard == "unlimited" || long.Parse(hard, CultureInfo.InvariantCulture) > 1048576 ? "1048576" : hard;
        await client.OutputUntilAsync("limits", $"nofile={expected}-2");
    }

    [Fact]
    public async Task Browser_ThatNeverAuthenticates_IsToldWhy_AndClosed()
    {
        await using var daemon = await TestTerminald.StartAsync(null, "--Covibe:Terminals:AuthTimeoutSeconds=1");
        await using var silent = await TerminalClient.ConnectAsync(daemon.Url, "/");
        (await silent.ErrorAsync("UNAUTHORIZED")).GetProperty("error").GetString()!.ShouldContain("within 1 s");
        (await silent.Socket.Closed).Status.ShouldBe(WebSocketCloseStatus.PolicyViolation);
    }

    [Fact]
    public async Task SessionLimits_GlobalAndPerUser_AreEnforced()
    {
        await using var daemon = await TestTerminald.StartAsync(new Dictionary<string, string> { ["MAX_SESSIONS"] = "3", ["MAX_SESSIONS_PER_USER"] = "2" });
        await using var ann = await daemon.ConnectAsync("ann");
        await using var bob = await daemon.ConnectAsync("bob");
        await ann.CreateAsync("a1", Sh);
        await ann.CreateAsync("a2", Sh);
        await ann.SendAsync(new { type = "session", action = "create", id = "a3", config = Sh });
        (await ann.ErrorAsync("SESSION_LIMIT")).GetProperty("error").GetString()!.ShouldContain("2");
        await bob.CreateAsync("b1", Sh);
        await bob.SendAsync(new { type = "session", action = "create", id = "b2", config = Sh });
        (await bob.ErrorAsync("SESSION_LIMIT")).GetProperty("error").GetString()!.ShouldContain("3");

        await ann.SendAsync(new { type = "session", action = "close", id = "a1" });
        await ann.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"));
        await bob.CreateAsync("b2", Sh);
    }

    [Fact]
    public async Task Orchestrator_LoggedOutTokens_AreRefused()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await server.CreateTeamAsync();
        await using var daemon = await TestTerminald.StartAsync(new Dictionary<string, string>
        {
            ["JWT_SECRET"] = TestServer.JwtSecret,
            ["ORCHESTRATOR_URL"] = server.Url.ToString(),
        });

        await using (var client = await TerminalClient.ConnectAsync(daemon.Url, "/", owner.Auth.AccessToken))
        {
            var ready = await client.ReceiveAsync("ready");
            ready.GetProperty("user").GetString().ShouldBe(owner.Auth.User.Id);
            ready.GetProperty("name").GetString().ShouldBe("Sarah");
        }

        using var http = server.Client(owner.Auth.AccessToken);
        (await http.PostAsJsonAsync("/api/auth/logout", new { })).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Authorization", $"Bearer {owner.Auth.AccessToken}");
        await Should.ThrowAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://{daemon.Url.Authority}/"), CancellationToken.None));
        socket.HttpStatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Command_WithoutJwtSecret_FailsNamingIt_AndWithItServesHealth()
    {
        var cli = new CliRunner(Path.GetTempPath());
        var (exit, _, stderr) = await cli.RunAsync(null, "terminald");
        exit.ShouldBe(2);
        stderr.ShouldContain("JWT_SECRET");
        foreach (var (variable, value) in new[] { ("PORT", "eighty"), ("LOG_LEVEL", "loud"), ("ORCHESTRATOR_URL", "ftp://x"), ("MAX_SESSIONS", "0"), ("SESSION_TIMEOUT", "-5"), ("TERMINAL_SANDBOX", "maybe"), ("TERMINAL_SANDBOX_USER", "0:0") })
        {
            using var bad = cli.Start(["terminald"], environment: new Dictionary<string, string?> { ["JWT_SECRET"] = TestTerminald.Secret, ["HOST"] = "127.0.0.1", ["PORT"] = "0", [variable] = value });
            var error = await bad.StandardError.ReadToEndAsync();
            await bad.WaitForExitAsync();
            bad.ExitCode.ShouldBe(2, $"{variable}={value}: {error}");
            error.ShouldContain(variable);
        }

        var port = PostgresServer.FreePort();
        var root = Directory.CreateTempSubdirectory("covibe-terminald-cli-").FullName;
        Execution.UntrustedFiles.GiveTo(root, 10001, 10001);
        using var process = cli.Start(["terminald"], environment: new Dictionary<string, string?>
        {
            ["JWT_SECRET"] = TestTerminald.Secret,
            ["TERMINAL_ROOT"] = root,
            ["PORT"] = port.ToString(CultureInfo.InvariantCulture),
            ["HOST"] = "127.0.0.1",
            ["LOG_LEVEL"] = "warn",
        });
        try
        {
            (await process.StandardOutput.ReadLineAsync())!.ShouldContain($"127.0.0.1:{port}");
            using var http = new HttpClient();
            var health = await http.GetFromJsonAsync<System.Text.Json.JsonElement>($"http://127.0.0.1:{port}/health");
            health.GetProperty("status").GetString().ShouldBe("running");
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
            Directory.Delete(root, recursive: true);
        }
    }
}

[Collection(SerialGroup.Name)]
public sealed class TerminalHygieneTests
{
    private static readonly object Sh = new { shell = "/bin/sh" };

    [Fact]
    public async Task ManySessions_LeaveNoZombiesNorDescriptors()
    {
        await using var daemon = await TestTerminald.StartAsync(new Dictionary<string, string> { ["MAX_SESSIONS_PER_USER"] = "100" });
        await using var client = await daemon.ConnectAsync();
        await client.CreateAsync("warm-up", Sh);
        await client.CommandAsync("warm-up", "exit");
        await client.ReceiveAsync(m => TerminalClient.Is(m, "session", "exited"));
        var descriptors = Directory.GetFiles("/proc/self/fd").Length;
        var terminals = Terminals();

        const int rounds = 300;
        var shells = new List<int>();
        for (var i = 0; i < rounds; i++)
        {
            var id = $"s{i}";
            await client.CreateAsync(id, Sh);
            shells.Add(daemon.Manager.Find(id)?.ProcessId ?? 0);
            if (i % 2 == 0)
            {
                await client.CommandAsync(id, "exit");
                await client.ReceiveAsync(m => TerminalClient.Is(m, "session", "exited") && m.GetProperty("id").GetString() == id);
            }
            else
            {
                await client.SendAsync(new { type = "session", action = "close", id });
                await client.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed") && m.GetProperty("id").GetString() == id);
            }
        }

        daemon.Manager.Count.ShouldBe(0);
        // Reaped: not even a zombie left of any of them.
        shells.Where(pid => Directory.Exists($"/proc/{pid}")).ShouldBeEmpty();
        // Nothing else runs meanwhile (a serial collection): every PTY is closed, and little else moved.
        Terminals().ShouldBe(terminals);
        Directory.GetFiles("/proc/self/fd").Length.ShouldBeLessThan(descriptors + 10);
    }

    /// <summary>Open PTY masters of this process.</summary>
    private static int Terminals() =>
        new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos().Count(fd =>
        {
            try
            {
                return fd.LinkTarget is "/dev/ptmx" or "/dev/pts/ptmx";
            }
            catch (IOException)
            {
                return false;
            }
        });
}
