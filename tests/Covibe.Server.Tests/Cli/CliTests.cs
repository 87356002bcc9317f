using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.RegularExpressions;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>The <c>covibe</c> executable driven as a process against a running server.</summary>
public sealed partial class CliTests(SqliteServerFixture fixture) : IClassFixture<SqliteServerFixture>, IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();

    private CliRunner User(string name) => new(Path.Combine(_root, name));

    [Fact]
    public async Task TeamCreateLoginChatAndLogout_WorkFromTheCommandLine()
    {
        var server = fixture.Server.Url.ToString().TrimEnd('/');
        var sarah = User("sarah");
        var miguel = User("miguel");

        var created = await sarah.RunAsync(TestServer.Password, "team", "create", "--server", server, "--name", "Rocket", "--user-name", "Sarah", "--email", "sarah.cli@example.com", "--password-stdin");
        created.ExitCode.ShouldBe(0, created.Stderr);
        var invite = InviteCode().Match(created.Stdout).Value;
        invite.ShouldNotBeEmpty(created.Stdout);

        var joined = await miguel.RunAsync(TestServer.Password, "login", "--server", server, "--invite", invite, "--email", "miguel.cli@example.com", "--name", "Miguel", "--password-stdin");
        joined.ExitCode.ShouldBe(0, joined.Stderr);
        joined.Stdout.ShouldContain("team Rocket");

        (await miguel.RunAsync(null, "chat", "send", "hello from the terminal")).ExitCode.ShouldBe(0);
        var tail = await sarah.RunAsync(null, "chat", "tail", "-n", "5");
        tail.ExitCode.ShouldBe(0, tail.Stderr);
        tail.Stdout.ShouldContain("Miguel: hello from the terminal");

        var team = await sarah.RunAsync(null, "team", "show");
        team.Stdout.ShouldContain("Miguel");
        (await sarah.RunAsync(null, "whoami")).Stdout.ShouldContain("Sarah <sarah.cli@example.com> in team Rocket (owner)");

        var logout = await miguel.RunAsync(null, "logout");
        logout.Stdout.ShouldContain("Logged out");
        var after = await miguel.RunAsync(null, "whoami");
        after.ExitCode.ShouldBe(1);
        after.Stderr.ShouldContain("not logged in");
    }

    [Fact]
    public async Task ChatTailFollow_PrintsLiveMessages()
    {
        var server = fixture.Server.Url.ToString().TrimEnd('/');
        var owner = await fixture.Server.CreateTeamAsync("Live");
        var watcher = User("watcher");
        (await watcher.RunAsync(TestServer.Password, "login", "--server", server, "--invite", owner.Invite.InviteCode, "--email", "watcher@example.com", "--name", "Watcher", "--password-stdin")).ExitCode.ShouldBe(0);

        using var follow = watcher.Start(["chat", "tail", "-f"]);
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        follow.OutputDataReceived += (_, e) => { if (e.Data is not null) { lines.Enqueue(e.Data); } };
        follow.BeginOutputReadLine();
        try
        {
            using var client = fixture.Server.Client(owner.Auth.AccessToken);
            var deadline = Stopwatch.StartNew();
            // Keep posting until the follower, once connected, prints one: it must then print it exactly once.
            var sent = 0;
            while (!lines.Any(l => l.Contains("Sarah: live ", StringComparison.Ordinal)))
            {
                deadline.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(30), string.Join('\n', lines));
                (await client.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest($"live {sent++}"))).EnsureSuccessStatusCode();
                await Task.Delay(300);
            }
            await Task.Delay(500);
            var printed = lines.Where(l => l.Contains("Sarah: live ", StringComparison.Ordinal)).ToList();
            printed.Count.ShouldBe(printed.Distinct().Count(), "no message is printed twice");
        }
        finally
        {
            follow.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task BadInput_IsReportedWithWhatToFix()
    {
        var server = fixture.Server.Url.ToString().TrimEnd('/');
        var user = User("bad");
        var unreachable = await user.RunAsync(TestServer.Password, "login", "--server", "http://127.0.0.1:9", "--email", "a@example.com", "--password-stdin");
        unreachable.ExitCode.ShouldBe(1);
        unreachable.Stderr.ShouldContain("Cannot reach the Covibe server");

        var invalid = await user.RunAsync("short", "team", "create", "--server", server, "--name", "T", "--user-name", "U", "--email", "nope", "--password-stdin");
        invalid.ExitCode.ShouldBe(1);
        invalid.Stderr.ShouldContain("'email' must be an email address");
        invalid.Stderr.ShouldContain("'password' must be at least 8 characters");

        var noTokenFile = await user.RunAsync(TestServer.Password, "team", "create", "--server", server, "--name", "T", "--user-name", "U", "--email", "u@example.com",
            "--password-stdin", "--signup-token-file", "/nonexistent/signup-token");
        noTokenFile.ExitCode.ShouldBe(1);
        noTokenFile.Stderr.ShouldContain("There is no signup token file at /nonexistent/signup-token");
        noTokenFile.Stderr.ShouldNotContain("Unhandled exception");

        var notLoggedIn = await user.RunAsync(null, "chat", "send", "hi");
        notLoggedIn.ExitCode.ShouldBe(1);
        notLoggedIn.Stderr.ShouldContain("covibe login");
    }

    [Fact]
    public async Task SavedLogin_IsPrivateAndNotPlaintext()
    {
        var server = fixture.Server.Url.ToString().TrimEnd('/');
        var user = User("private");
        (await user.RunAsync(TestServer.Password, "team", "create", "--server", server, "--name", "Private", "--user-name", "Pri", "--email", "pri@example.com", "--password-stdin")).ExitCode.ShouldBe(0);
        var credentials = Path.Combine(user.ConfigDirectory, "credentials");
        File.GetUnixFileMode(credentials).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.GetUnixFileMode(user.ConfigDirectory).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var text = Encoding.Latin1.GetString(await File.ReadAllBytesAsync(credentials));
        text.ShouldNotContain("refreshToken");
        text.ShouldNotContain("pri@example.com");
        (await user.RunAsync(null, "whoami")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Serve_OutsideDevelopmentWithoutJwtSecret_ExitsNamingTheSetting()
    {
        var runner = User("serve");
        using var process = runner.Start(["serve", "--data", Path.Combine(_root, "data"), "--urls", "http://127.0.0.1:0"]);
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        process.ExitCode.ShouldBe(2);
        // One start names every missing setting.
        (await stderr).ShouldContain("JWT_SECRET");
        (await stderr).ShouldContain("ENCRYPTION_KEY");
    }

    [Fact]
    public async Task ServeDev_PrintsHowToGetIn_AndServesHealth()
    {
        var runner = User("serve-dev");
        var port = PostgresServer.FreePort();
        using var process = runner.Start(["serve", "--dev", "--data", Path.Combine(_root, "dev-data"), "--urls", $"http://127.0.0.1:{port}"]);
        var errors = process.StandardError.ReadToEndAsync();
        try
        {
            var banner = new StringBuilder();
            while (await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line)
            {
                banner.AppendLine(line);
                if (line.StartsWith("Press Ctrl+C", StringComparison.Ordinal))
                {
                    break;
                }
            }
            if (banner.Length == 0)
            {
                await process.WaitForExitAsync();
                throw new Xunit.Sdk.XunitException($"covibe serve --dev exited with {process.ExitCode}: {await errors}");
            }
            banner.ToString().ShouldContain($"Listening on http://127.0.0.1:{port}");
            banner.ToString().ShouldContain("covibe team create --server");
            banner.ToString().ShouldNotContain("--signup-token-file"); // --dev: open signup
            banner.ToString().ShouldContain("Members' agents and terminals run on this machine in a bubblewrap sandbox with a network of its own (the internet, not this machine).");
            // The limits per team, or why there are none; and no engine, never set up here, said to have stopped.
            banner.ToString().ShouldContain(Environment.UserName == "root" ? "Each team's sandboxed programs together: at most" : "No limits per team:");
            banner.ToString().ShouldNotContain("stopped answering");
            banner.ToString().ShouldContain("Where teams' code may connect: open (Covibe:Egress:Default and Ceiling; a team owner may choose less: covibe egress set).");
            using var http = new HttpClient();
            (await http.GetFromJsonAsync<HealthResponse>($"http://127.0.0.1:{port}/health"))!.Status.ShouldBe("running");
        }
        finally
        {
            process.Kill(entireProcessTree: true);
        }
    }

    public void Dispose() => StartupTests.Delete(_root);

    [GeneratedRegex("[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")]
    private static partial Regex InviteCode();
}
