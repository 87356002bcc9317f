using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Seed 004's terminal protocol against a real <c>covibe terminald</c> and real PTYs.</summary>
public sealed class TerminalTests : IAsyncLifetime
{
    private TestTerminald _daemon = null!;

    public async Task InitializeAsync() => _daemon = await TestTerminald.StartAsync(new Dictionary<string, string> { ["MAX_COMMAND_LENGTH"] = "200" });

    public async Task DisposeAsync() => await _daemon.DisposeAsync();

    private static readonly object Sh = new { shell = "/bin/sh" };

    [Fact]
    public async Task Create_Command_RunsOnARealTerminalInTheRoot()
    {
        Directory.CreateDirectory(Path.Combine(_daemon.Root, "work"));
        Environment.SetEnvironmentVariable("COVIBE_TEST_SERVER_SECRET", "must-not-leak");
        await using var client = await _daemon.ConnectAsync();
        var ready = await client.ReceiveAsync("ready");
        ready.GetProperty("user").GetString().ShouldBe("ann");

        var created = await client.CreateAsync("s1", new { shell = "/bin/sh", cwd = "work", cols = 100, rows = 30, env = new Dictionary<string, string> { ["GREETING"] = "hello there" } });
        created.GetProperty("id").GetString().ShouldBe("s1");
        created.GetProperty("info").GetProperty("status").GetString().ShouldBe("active");

        await client.CommandAsync("s1", "tty; stty size; pwd; echo \"$GREETING\"; env | grep -c COVIBE_TEST_SERVER_SECRET; echo nofile=$(ulimit -n) core=$(ulimit -c); echo done-$((40+2))", id: "cmd-1");
        var output = await client.OutputUntilAsync("s1", "done-42");
        // A terminal (in the sandbox, bubblewrap shows the session's terminal as /dev/console).
        output.ShouldMatch(@"(?s).*/dev/(pts/\d+|console)\r?\n30 100.*");
        output.ShouldContain("30 100");
        output.ShouldContain(Path.Combine(_daemon.Root, "work"));
        output.ShouldContain("hello there");
        output.ShouldContain("\r\n0\r\n"); // the server's own environment did not reach the shell
        output.ShouldNotContain("must-not-leak");
        output.ShouldContain("nofile=4096 core=0"); // resource limits on the shell
    }

    [Fact]
    public async Task FullScreenPrograms_VimAndTop_WorkAsInATerminal()
    {
        await using var client = await _daemon.ConnectAsync();
        await client.CreateAsync("tui", new { shell = "/bin/sh", cols = 100, rows = 30 });
        await client.CommandAsync("tui", "vi -u NONE -N notes.txt");
        await client.OutputUntilAsync("tui", "notes.txt");
        await Task.Delay(300);
        await client.InputAsync("tui", "ihello from vi\u001b:wq\r");
        await Eventually.UntilAsync(() => Task.FromResult(File.Exists(Path.Combine(_daemon.Root, "notes.txt"))), "vi writes the file");
        (await File.ReadAllTextAsync(Path.Combine(_daemon.Root, "notes.txt"))).ShouldBe("hello from vi\n");

        // Back at the prompt (vim discards typeahead as it leaves), then a full-screen monitor.
        var written = (await client.OutputUntilAsync("tui", "written")).IndexOf("written", StringComparison.Ordinal);
        await client.OutputUntilAsync("tui", "$ ", after: written); // the sandbox's unprivileged user's prompt
        var before = client.Length("tui");
        await client.CommandAsync("tui", "top -d 0.2");
        await client.OutputUntilAsync("tui", "load average", after: before);
        // q quits top; on a busy machine the first key may arrive before top reads keys, so again until the prompt is back.
        await Eventually.UntilAsync(async () =>
        {
            await client.InputAsync("tui", "q");
            await Task.Delay(500);
            return client.Transcript("tui").TrimEnd().EndsWith('$');
        }, "top quits and the shell's prompt is back");
        await client.InputAsync("tui", "\u0015"); // Ctrl-U: clear a q typed after top had gone
        await client.CommandAsync("tui", "echo after-top-$((1+1))");
        await client.OutputUntilAsync("tui", "after-top-2", after: before);
    }

    [Fact]
    public async Task Output_CarriesTheSeedFields()
    {
        await using var client = await _daemon.ConnectAsync();
        await client.CreateAsync("fields", Sh);
        await client.CommandAsync("fields", "echo marker-$((6*7))", id: "cmd-77");
        await client.OutputUntilAsync("fields", "marker-42");
        var message = client.Outputs.Last(m => m.GetProperty("data").GetString()!.Contains("marker-42"));
        message.GetProperty("id").GetString().ShouldBe("cmd-77");
        message.GetProperty("session").GetString().ShouldBe("fields");
        DateTime.Parse(message.GetProperty("timestamp").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(new DateTime(2020, 1, 1));
        message.GetProperty("end").GetInt64().ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Resize_TheProgramSeesTheNewSize()
    {
        await using var client = await _daemon.ConnectAsync();
        await client.CreateAsync("rs", Sh);
        // A foreground program told of the change by SIGWINCH, as vim or top would be.
        await client.CommandAsync("rs", "sh -c 'trap \"stty size; exit\" WINCH; echo waiting; while :; do sleep 0.05; done'");
        await client.OutputUntilAsync("rs", "waiting\r\n");
        await client.SendAsync(new { type = "session", action = "resize", id = "rs", config = new { cols = 132, rows = 43 } });
        (await client.ReceiveAsync(m => TerminalClient.Is(m, "session", "resized"))).GetProperty("info").GetProperty("cols").GetInt32().ShouldBe(132);
        await client.OutputUntilAsync("rs", "43 132");
    }

    [Fact]
    public async Task CtrlC_StopsAFastProducerPromptly()
    {
        await using var client = await _daemon.ConnectAsync();
        await client.CreateAsync("yes", Sh);
        await client.CommandAsync("yes", "yes covibe-flood");
        await client.OutputUntilAsync("yes", "covibe-flood\r\ncovibe-flood\r\n");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await client.InputAsync("yes", "\u0003");
        await client.CommandAsync("yes", "echo status=$?");
        var output = await client.OutputUntilAsync("yes", "status=130", TimeSpan.FromSeconds(20));
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10), "Ctrl-C should stop `yes` at once");
        output.Length.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task FastProducer_WithAStalledViewer_IsHeldBackNotBuffered()
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {TestTerminald.Token()}");
        await socket.ConnectAsync(new Uri($"ws://{_daemon.Url.Authority}/"), CancellationToken.None);
        // This client sends but never reads.
        async Task Send(string json) => await socket.SendAsync(System.Text.Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None);
        await Send("""{"type":"session","action":"create","id":"stall","config":{"shell":"/bin/sh"}}""");
        await Send("""{"type":"command","id":"c","session":"stall","command":"yes"}""");
        var session = await Eventually.UntilAsync(() => Task.FromResult(_daemon.Manager.Find("stall")), s => s is not null && s.Output.End > 0, "the session starts");
        // Once the socket buffers between us are full, the program is held back: output stops growing.
        var last = -1L;
        var first = await Eventually.UntilAsync(async () =>
        {
            var previous = last;
            await Task.Delay(300);
            last = session!.Output.End;
            return (Previous: previous, Now: last);
        }, p => p.Previous == p.Now, "output stops growing while the only viewer does not read", TimeSpan.FromSeconds(30));
        await Task.Delay(500);
        var second = session!.Output.End;
        second.ShouldBe(first.Now);
        // What got out is what the kernel's socket buffers hold plus the lag allowed (64 KiB), not more.
        first.Now.ShouldBeLessThan(32 * 1024 * 1024);
        socket.Abort();
        socket.Dispose();
        // With no viewer left the program runs again (its output only fills the scrollback).
        await Eventually.UntilAsync(() => Task.FromResult(session.Output.End > second), "output resumes once the stalled viewer is gone");
        await session.CloseAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Reattach_AfterTheClientDrops_GetsScrollbackThenLiveOutputWithNoGap()
    {
        var first = await _daemon.ConnectAsync();
        await first.CreateAsync("keep", Sh);
        await first.CommandAsync("keep", "echo before-drop");
        await first.OutputUntilAsync("keep", "before-drop\r\n");
        await first.CommandAsync("keep", "sleep 1; i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo away-$i; done");
        // The shell has the command (its echo is back) before the network goes: a reset drops what the server has not read yet.
        await first.OutputUntilAsync("keep", "echo away-$i; done\r\n");
        var (seen, seenEnd) = first.Snapshot("keep");
        first.Socket.Socket.Abort(); // the network goes away
        await first.DisposeAsync();
        await Task.Delay(1500);

        await using var resumed = await _daemon.ConnectAsync();
        await resumed.SendAsync(new { type = "session", action = "attach", id = "keep", since = seenEnd });
        var attached = await resumed.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"));
        attached.GetProperty("from").GetInt64().ShouldBe(seenEnd);
        await resumed.OutputUntilAsync("keep", "away-300\r\n");

        await using var full = await _daemon.ConnectAsync();
        await full.SendAsync(new { type = "session", action = "attach", id = "keep" });
        var all = await full.OutputUntilAsync("keep", "away-300\r\n");
        (seen + resumed.Transcript("keep")).ShouldBe(all, "scrollback up to the drop plus what the resumed client got is the whole output");

        await resumed.CommandAsync("keep", "echo live-again");
        await resumed.OutputUntilAsync("keep", "live-again\r\n");
        await full.OutputUntilAsync("keep", "live-again\r\n");
    }

    [Fact]
    public async Task SeveralAttachments_SeeTheSameScreen()
    {
        await using var a = await _daemon.ConnectAsync();
        await using var b = await _daemon.ConnectAsync();
        await a.CreateAsync("both", Sh);
        await b.SendAsync(new { type = "session", action = "attach", id = "both" });
        (await b.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"))).GetProperty("read_only").GetBoolean().ShouldBeFalse();
        await b.CommandAsync("both", "echo typed-by-b");
        // Two connections are two queues: let b's line reach the shell before a types.
        await a.OutputUntilAsync("both", "typed-by-b\r\n");
        await a.CommandAsync("both", "echo typed-by-a; echo end-of-both");
        await a.OutputUntilAsync("both", "end-of-both\r\n");
        await b.OutputUntilAsync("both", "end-of-both\r\n");
        static string UpToEnd(string text) => text[..(text.IndexOf("end-of-both\r\n", StringComparison.Ordinal) + 13)];
        UpToEnd(b.Transcript("both")).ShouldBe(UpToEnd(a.Transcript("both")));
        a.Transcript("both").ShouldContain("typed-by-b");
    }

    [Fact]
    public async Task Share_TeammatesWatchReadOnly_OthersCannotSee()
    {
        await using var owner = await _daemon.ConnectAsync("ann", "team-1");
        await using var mate = await _daemon.ConnectAsync("bob", "team-1");
        await using var stranger = await _daemon.ConnectAsync("eve", "team-2");
        await owner.CreateAsync("shared", Sh);

        await mate.SendAsync(new { type = "session", action = "attach", id = "shared" });
        await mate.ErrorAsync("SESSION_NOT_FOUND");

        await owner.SendAsync(new { type = "session", action = "share", id = "shared", shared = true });
        (await owner.ReceiveAsync(m => TerminalClient.Is(m, "session", "shared"))).GetProperty("info").GetProperty("shared").GetBoolean().ShouldBeTrue();
        await mate.SendAsync(new { type = "session", action = "list" });
        (await mate.ReceiveAsync("sessions")).GetProperty("sessions").EnumerateArray().Select(s => s.GetProperty("id").GetString()).ShouldContain("shared");
        await mate.SendAsync(new { type = "session", action = "attach", id = "shared" });
        (await mate.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"))).GetProperty("read_only").GetBoolean().ShouldBeTrue();
        await owner.CommandAsync("shared", "echo for-the-team");
        await mate.OutputUntilAsync("shared", "for-the-team\r\n");
        // The owner resizes: watchers hear the new size, to draw the program as it draws itself.
        await owner.SendAsync(new { type = "session", action = "resize", id = "shared", config = new { cols = 101, rows = 33 } });
        var resized = await mate.ReceiveAsync(m => TerminalClient.Is(m, "session", "resized"));
        resized.GetProperty("info").GetProperty("cols").GetInt32().ShouldBe(101);
        resized.GetProperty("info").GetProperty("rows").GetInt32().ShouldBe(33);

        await mate.InputAsync("shared", "rm -rf ~\r");
        await mate.ErrorAsync("FORBIDDEN");
        await mate.SendAsync(new { type = "session", action = "close", id = "shared" });
        await mate.ErrorAsync("FORBIDDEN");
        await stranger.SendAsync(new { type = "session", action = "attach", id = "shared" });
        await stranger.ErrorAsync("SESSION_NOT_FOUND");

        // Sharing stops: the teammate watching is detached and may not attach again.
        await owner.SendAsync(new { type = "session", action = "share", id = "shared", shared = false });
        (await mate.ReceiveAsync(m => TerminalClient.Is(m, "session", "detached"))).GetProperty("id").GetString().ShouldBe("shared");
        await mate.SendAsync(new { type = "session", action = "attach", id = "shared" });
        await mate.ErrorAsync("SESSION_NOT_FOUND");
    }

    [Fact]
    public async Task BadInput_GetsTheDocumentedErrors_AndTheConnectionKeepsWorking()
    {
        var outside = Directory.CreateTempSubdirectory("covibe-outside-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(outside, "inner"));
            File.CreateSymbolicLink(Path.Combine(_daemon.Root, "escape"), outside);
            await using var client = await _daemon.ConnectAsync();
            await client.ReceiveAsync("ready");

            await client.SendTextAsync("{not json");
            await client.ErrorAsync("INVALID_MESSAGE");
            await client.SendTextAsync("""{"type":"session","action":"create","config":{"cols":"wide"}}""");
            await client.ErrorAsync("INVALID_MESSAGE");
            await client.SendAsync(new { type = "teleport" });
            await client.ErrorAsync("UNKNOWN_TYPE");
            await client.SendAsync(new { type = "session", action = "explode", id = "x" });
            await client.ErrorAsync("UNKNOWN_ACTION");
            foreach (var cwd in new[] { "../..", "/etc", "escape", "escape/inner", "missing-dir", "sub/../../x" })
            {
                await client.SendAsync(new { type = "session", action = "create", id = "bad-cwd", config = new { shell = "/bin/sh", cwd } });
                (await client.ErrorAsync("INVALID_CWD")).GetProperty("session").GetString().ShouldBe("bad-cwd");
            }
            await client.SendAsync(new { type = "session", action = "create", id = "bad-shell", config = new { shell = "/usr/bin/python3" } });
            await client.ErrorAsync("INVALID_SHELL");
            await client.SendAsync(new { type = "session", action = "create", id = "bad-env", config = new { shell = "/bin/sh", env = new Dictionary<string, string> { ["LD_PRELOAD"] = "/tmp/evil.so" } } });
            await client.ErrorAsync("INVALID_ENV");
            await client.SendAsync(new { type = "session", action = "create", id = "bad-size", config = new { shell = "/bin/sh", cols = 0 } });
            await client.ErrorAsync("INVALID_SIZE");
            await client.CommandAsync("nobody-here", "ls");
            await client.ErrorAsync("SESSION_NOT_FOUND");

            await client.CreateAsync("ok", Sh);
            await client.SendAsync(new { type = "session", action = "create", id = "ok", config = Sh });
            await client.ErrorAsync("SESSION_EXISTS");
            await client.CommandAsync("ok", "echo " + new string('x', 300), id: "long");
            (await client.ErrorAsync("COMMAND_TOO_LONG")).GetProperty("id").GetString().ShouldBe("long");
            await client.SendTextAsync("{\"type\":\"input\",\"session\":\"ok\",\"data\":\"" + new string('y', 300_000) + "\"}");
            await client.ErrorAsync("MESSAGE_TOO_LARGE");
            await client.CommandAsync("ok", "echo still-$((1+1))");
            await client.OutputUntilAsync("ok", "still-2");
            Directory.GetFileSystemEntries(outside).ShouldBe([Path.Combine(outside, "inner")]);
            _daemon.Manager.Sessions.Select(s => s.Id).ShouldBe(["ok"]);
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task Command_WithItsOwnCwd_RunsThereAndLeavesTheSessionWhereItWas()
    {
        Directory.CreateDirectory(Path.Combine(_daemon.Root, "sub"));
        await using var client = await _daemon.ConnectAsync();
        await client.CreateAsync("cwd", Sh);
        await client.SendAsync(new { type = "command", id = "c1", session = "cwd", command = "pwd; echo \"v=$V\"", cwd = "sub", env = new Dictionary<string, string> { ["V"] = "it's quoted" } });
        await client.OutputUntilAsync("cwd", "v=it's quoted");
        client.Transcript("cwd").ShouldContain(Path.Combine(_daemon.Root, "sub") + "\r\n");
        await client.CommandAsync("cwd", "echo at=$(pwd)");
        await client.OutputUntilAsync("cwd", "at=" + _daemon.Root + "\r\n");
        await client.SendAsync(new { type = "command", id = "c2", session = "cwd", command = "pwd", cwd = "../" });
        await client.ErrorAsync("INVALID_CWD");
    }

    [Fact]
    public async Task Close_EndsTheShellAndItsJobs()
    {
        await using var client = await _daemon.ConnectAsync();
        await client.CreateAsync("closing", Sh);
        await client.CommandAsync("closing", "trap '' HUP; sleep 300 & echo job=$! $((1+1))x");
        var output = await client.OutputUntilAsync("closing", " 2x");
        var shell = _daemon.Manager.Find("closing")!.ProcessId;
        // The job's PID on this machine (the shell's sandbox has PIDs of its own).
        var job = await Eventually.UntilAsync(() => Task.FromResult(Covibe.Execution.ProcFs.FindDescendant(shell, argv => argv is ["sleep", "300", ..]) ?? 0),
            pid => pid > 0, "the background job runs");
        await client.SendAsync(new { type = "session", action = "close", id = "closing" });
        await client.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"));
        Directory.Exists($"/proc/{shell}").ShouldBeFalse("the shell is gone and reaped");
        await Eventually.UntilAsync(() => Task.FromResult(!Directory.Exists($"/proc/{job}") || File.ReadAllText($"/proc/{job}/stat").Contains(") Z ")), "the background job that ignored SIGHUP is killed");
        await client.CommandAsync("closing", "echo hi");
        await client.ErrorAsync("SESSION_NOT_FOUND");
    }

    [Fact]
    public async Task Exit_TellsEveryViewer()
    {
        await using var client = await _daemon.ConnectAsync();
        await client.CreateAsync("bye", Sh);
        await client.CommandAsync("bye", "exit 7");
        var exited = await client.ReceiveAsync(m => TerminalClient.Is(m, "session", "exited"));
        exited.GetProperty("exit_code").GetInt32().ShouldBe(7);
        await Eventually.UntilAsync(() => Task.FromResult(_daemon.Manager.Find("bye") is null), "the session is removed");
    }

    [Fact]
    public async Task Health_AndSessions_HaveTheSeedShapes()
    {
        using var http = new HttpClient { BaseAddress = _daemon.Url };
        await using var client = await _daemon.ConnectAsync();
        await client.CreateAsync("listed", Sh);

        using var health = JsonDocument.Parse(await http.GetStringAsync("/health"));
        health.RootElement.EnumerateObject().Select(p => p.Name).ShouldBe(["status", "sessions", "uptime", "version"]);
        health.RootElement.GetProperty("status").GetString().ShouldBe("running");
        health.RootElement.GetProperty("sessions").GetInt32().ShouldBe(1);

        using var sessions = JsonDocument.Parse(await http.GetStringAsync("/sessions"));
        var entry = sessions.RootElement.GetProperty("sessions").EnumerateArray().Single();
        entry.EnumerateObject().Select(p => p.Name).ShouldBe(["id", "created_at", "last_activity", "status"]);
        entry.GetProperty("id").GetString().ShouldBe("listed");
        entry.GetProperty("status").GetString().ShouldBe("active");

        using var plain = await http.GetAsync("/");
        await plain.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "websocket-required");
    }

    [Fact]
    public async Task Auth_ExpiredForgedOrMissingTokens_AreRefused()
    {
        async Task<HttpStatusCode?> UpgradeStatus(string? token, string? origin = null)
        {
            using var socket = new ClientWebSocket();
            socket.Options.CollectHttpResponseDetails = true;
            if (token is not null)
            {
                socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
            }
            if (origin is not null)
            {
                socket.Options.SetRequestHeader("Origin", origin);
            }
            try
            {
                await socket.ConnectAsync(new Uri($"ws://{_daemon.Url.Authority}/"), CancellationToken.None);
                return HttpStatusCode.SwitchingProtocols;
            }
            catch (WebSocketException)
            {
                return socket.HttpStatusCode;
            }
        }

        var now = TimeProvider.System.GetUtcNow().UtcDateTime;
        (await UpgradeStatus(TestTerminald.Token(now: now.AddHours(-2), lifetime: TimeSpan.FromMinutes(10)))).ShouldBe(HttpStatusCode.Unauthorized);
        (await UpgradeStatus(TestTerminald.Token(secret: "another-secret-another-secret-0123456789"))).ShouldBe(HttpStatusCode.Unauthorized);
        var parts = TestTerminald.Token().Split('.');
        var none = Convert.ToBase64String("""{"alg":"none","typ":"JWT"}"""u8.ToArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        (await UpgradeStatus($"{none}.{parts[1]}.")).ShouldBe(HttpStatusCode.Unauthorized);
        (await UpgradeStatus(TestTerminald.Token(), origin: "https://evil.example")).ShouldBe(HttpStatusCode.Forbidden);
        (await UpgradeStatus(TestTerminald.Token())).ShouldBe(HttpStatusCode.SwitchingProtocols);

        // Browsers: no header, the token in the first message.
        await using var browser = await TerminalClient.ConnectAsync(_daemon.Url, "/");
        await browser.SendAsync(new { type = "session", action = "list" });
        await browser.ErrorAsync("UNAUTHORIZED");
        (await browser.Socket.Closed).Status.ShouldBe(WebSocketCloseStatus.PolicyViolation);

        await using var forged = await TerminalClient.ConnectAsync(_daemon.Url, "/");
        await forged.SendAsync(new { type = "auth", token = TestTerminald.Token(secret: "another-secret-another-secret-0123456789") });
        await forged.ErrorAsync("UNAUTHORIZED");

        await using var good = await TerminalClient.ConnectAsync(_daemon.Url, "/");
        await good.SendAsync(new { type = "auth", token = TestTerminald.Token("zoe") });
        (await good.ReceiveAsync("ready")).GetProperty("user").GetString().ShouldBe("zoe");
    }
}
