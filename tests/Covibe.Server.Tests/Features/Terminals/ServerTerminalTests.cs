using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Terminals inside <c>covibe serve</c>: <c>/terminal</c> with member logins, and <c>covibe terminal</c>.</summary>
public sealed class ServerTerminalTests(SqliteServerFixture fixture) : IClassFixture<SqliteServerFixture>, IDisposable
{
    private static readonly object Sh = new { shell = "/bin/sh" };
    private readonly string _root = StartupTests.TempDirectory();

    [Fact]
    public async Task Members_OpenTerminalsInTheWorkspace_TeammatesWatchShared_OtherTeamsSeeNothing()
    {
        var server = fixture.Server;
        var (owner, member) = await server.CreateTeamWithMemberAsync("Terminal team");
        var stranger = await server.CreateTeamAsync("Other team", "Chen");

        await using var sarah = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken);
        (await sarah.ReceiveAsync("ready")).GetProperty("name").GetString().ShouldBe("Sarah");
        await sarah.CreateAsync("team-shell", Sh);
        // The shell starts in the team's workspace, which the sandbox shows at /workspace.
        await sarah.CommandAsync("team-shell", "echo at=$(pwd) n=$((3*3)) > made-here.txt; cat made-here.txt");
        await sarah.OutputUntilAsync("team-shell", "at=/workspace n=9");
        File.ReadAllText(Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id, "made-here.txt")).ShouldBe("at=/workspace n=9\n");
        await sarah.SendAsync(new { type = "session", action = "share", id = "team-shell" });
        // Shared before a teammate attaches (two connections: their messages are not ordered against each other).
        await sarah.ReceiveAsync(m => TerminalClient.Is(m, "session", "shared"));

        // A browser: no header, the token in the first message.
        await using var miguel = await TerminalClient.ConnectAsync(server.Url, "/terminal");
        await miguel.SendAsync(new { type = "auth", token = member.AccessToken });
        await miguel.ReceiveAsync("ready");
        await miguel.SendAsync(new { type = "session", action = "attach", id = "team-shell" });
        (await miguel.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"))).GetProperty("read_only").GetBoolean().ShouldBeTrue();
        await miguel.OutputUntilAsync("team-shell", "n=9");

        await using var chen = await TerminalClient.ConnectAsync(server.Url, "/terminal", stranger.Auth.AccessToken);
        await chen.SendAsync(new { type = "session", action = "attach", id = "team-shell" });
        await chen.ErrorAsync("SESSION_NOT_FOUND");

        // Signed out: the open connection closes, and the token no longer opens terminals.
        using var http = server.Client(member.AccessToken);
        (await http.PostAsJsonAsync("/api/auth/logout", new { })).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        await miguel.ErrorAsync("UNAUTHORIZED");
        (await miguel.Socket.Closed).Status.ShouldBe(WebSocketCloseStatus.PolicyViolation);
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Authorization", $"Bearer {member.AccessToken}");
        await Should.ThrowAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://{server.Url.Authority}/terminal"), CancellationToken.None));
        socket.HttpStatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        await sarah.SendAsync(new { type = "session", action = "close", id = "team-shell" });
        await sarah.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"));
    }

    [Fact]
    public async Task CovibeTerminal_RunsTypedInput_AndAttachesToAnExistingSession()
    {
        var server = fixture.Server;
        var (owner, sarah) = await LoggedInOwnerAsync("Terminal cli");

        var run = await sarah.RunAsync("echo cli-$((2*21))\nexit 3", "terminal", "--shell", "/bin/sh");
        run.Stdout.ShouldContain("cli-42");
        run.ExitCode.ShouldBe(3, run.Stderr);
        run.Stderr.ShouldContain("exit code 3");

        await using var web = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken);
        await web.CreateAsync("from-web", Sh);
        await web.CommandAsync("from-web", "echo typed-in-web-$((5+5))");
        await web.OutputUntilAsync("from-web", "typed-in-web-10");
        var listed = await sarah.RunAsync(null, "terminal", "ls");
        listed.Stdout.ShouldContain("from-web");
        listed.Stdout.ShouldContain("mine");

        // Stdin ends after the last line: that is Ctrl-D at the prompt, so the shell exits.
        var attached = await sarah.RunAsync("echo attached-$((1+1))", "terminal", "--attach", "from-web");
        attached.Stdout.ShouldContain("typed-in-web-10"); // the scrollback first
        attached.Stdout.ShouldContain("attached-2");
        attached.ExitCode.ShouldBe(0, attached.Stderr);
        await web.OutputUntilAsync("from-web", "attached-2");

        var missing = await sarah.RunAsync(null, "terminal", "--attach", "no-such-session");
        missing.ExitCode.ShouldBe(1);
        missing.Stderr.ShouldContain("no-such-session");
    }

    [Fact]
    public async Task CovibeTerminal_OnARealTerminal_GoesRaw_AndCtrlBracketDetaches()
    {
        var server = fixture.Server;
        var (_, sarah) = await LoggedInOwnerAsync("Terminal raw");

        // script(1) gives the command a real terminal, as a person's shell would.
        var info = new System.Diagnostics.ProcessStartInfo("script", ["-q", "-e", "-c", $"dotnet {CliRunner.Dll} terminal --shell /bin/sh", "/dev/null"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["COVIBE_CONFIG_DIR"] = sarah.ConfigDirectory;
        info.Environment["TERM"] = "xterm";
        using var process = System.Diagnostics.Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        var reading = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await process.StandardOutput.ReadAsync(buffer)) > 0)
            {
                lock (output)
                {
                    output.Append(buffer, 0, n);
                }
            }
        });
        string Seen()
        {
            lock (output)
            {
                return output.ToString();
            }
        }
        try
        {
            // The shell runs sandboxed as an unprivileged user: its prompt is "$ ".
            await Eventually.UntilAsync(() => Task.FromResult(Seen().Contains("$ ", StringComparison.Ordinal)), "the remote prompt appears");
            // Raw mode: the keys go through one by one, and Enter is a carriage return.
            await process.StandardInput.WriteAsync("echo raw-$((3+4)); tty\r");
            await process.StandardInput.FlushAsync();
            await Eventually.UntilAsync(() => Task.FromResult(Seen().Contains("raw-7", StringComparison.Ordinal)), "the command runs");
            await process.StandardInput.WriteAsync("\u001d");
            await process.StandardInput.FlushAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await process.WaitForExitAsync(timeout.Token);
            // What it printed last may still be on its way to us when it has exited.
            await reading.WaitAsync(timeout.Token);
            process.ExitCode.ShouldBe(0, Seen());
            Seen().ShouldContain("detached");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        await reading;
        var listed = await sarah.RunAsync(null, "terminal", "ls");
        listed.Stdout.ShouldContain("mine", customMessage: "the detached session keeps running");
    }

    [Fact]
    public async Task CovibeTerminal_AfterTheNetworkDrops_ReconnectsAndCarriesOn_WithoutRepeats()
    {
        await using var proxy = new TcpProxy(fixture.Server.Url.Port);
        var (_, sarah) = await LoggedInOwnerAsync("Terminal drops", proxy.Url);
        using var process = sarah.Start(["terminal", "--shell", "/bin/sh"], redirectStdin: true);
        var stdout = new System.Text.StringBuilder();
        var stderr = new System.Text.StringBuilder();
        async Task Collect(StreamReader reader, System.Text.StringBuilder into)
        {
            var buffer = new char[4096];
            int n;
            while ((n = await reader.ReadAsync(buffer)) > 0)
            {
                lock (into)
                {
                    into.Append(buffer, 0, n);
                }
            }
        }
        string Text(System.Text.StringBuilder from)
        {
            lock (from)
            {
                return from.ToString();
            }
        }
        var reading = Task.WhenAll(Collect(process.StandardOutput, stdout), Collect(process.StandardError, stderr));
        try
        {
            await process.StandardInput.WriteAsync("echo one-$((1+1))\n");
            await process.StandardInput.FlushAsync();
            await Eventually.UntilAsync(() => Task.FromResult(Text(stdout).Contains("one-2", StringComparison.Ordinal)), "the first command runs");

            proxy.DropAll();
            await Eventually.UntilAsync(() => Task.FromResult(Text(stderr).Contains("reconnected", StringComparison.Ordinal)), "the CLI reconnects by itself");
            await process.StandardInput.WriteAsync("echo two-$((2+2))\nexit 5\n");
            await process.StandardInput.FlushAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(timeout.Token);
            process.ExitCode.ShouldBe(5, Text(stderr));
            await reading;
            var output = Text(stdout);
            output.ShouldContain("two-4");
            // Carried on from the last byte shown: nothing printed twice.
            System.Text.RegularExpressions.Regex.Count(output, "one-2").ShouldBe(1, output); // the typed line reads one-$((1+1))
            Text(stderr).ShouldContain("connection lost");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>A new team whose owner is logged in with the CLI.</summary>
    private async Task<(Covibe.Protocol.CreateTeamResponse Owner, CliRunner Cli)> LoggedInOwnerAsync(string team, Uri? via = null)
    {
        var owner = await fixture.Server.CreateTeamAsync(team);
        var cli = new CliRunner(Path.Combine(_root, team.Replace(' ', '-')));
        var login = await cli.RunAsync(TestServer.Password, "login", "--server", (via ?? fixture.Server.Url).ToString().TrimEnd('/'), "--email", owner.Auth.User.Email, "--password-stdin");
        login.ExitCode.ShouldBe(0, login.Stderr);
        return (owner, cli);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
