using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary><c>covibe preview ...</c> driven as a process against a running server.</summary>
public sealed class PreviewCliTests : IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task SetStatusLogsOpenRedeploy_FromTheCommandLine()
    {
        var v1 = _repo.Commit("v1", new() { ["index.html"] = "<h1>v1</h1>", ["covibe.preview.json"] = """{"build": "echo building the site", "static": "."}""" });
        await using var server = await TestServer.StartAsync(settings: PreviewTests.Settings);
        var url = server.Url.ToString().TrimEnd('/');
        var (owner, _) = await server.CreateTeamWithMemberAsync();
        var sarah = new CliRunner(Path.Combine(_root, "sarah"));
        (await sarah.RunAsync(TestServer.Password, "login", "--server", url, "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);

        var set = await sarah.RunAsync(null, "preview", "set", _repo.Path);
        set.ExitCode.ShouldBe(0, set.Stderr);
        set.Stdout.ShouldContain($"Payload URL:   {url}/api/webhook/push?team={owner.Auth.Team.Id}");
        set.Stdout.ShouldMatch(@"Secret:\s+[0-9a-f]{64}");

        // Follows the first deploy's build until it is live.
        var logs = await sarah.RunAsync(null, "preview", "logs", "-f");
        logs.ExitCode.ShouldBe(0, logs.Stderr);
        logs.Stdout.ShouldContain("building the site");
        logs.Stdout.ShouldContain($"Commit {v1[..7]} built");

        var status = await sarah.RunAsync(null, "preview", "status");
        status.Stdout.ShouldContain("(main): live");
        status.Stdout.ShouldContain($"live:     {v1[..7]}");

        var open = await sarah.RunAsync(null, "preview", "open");
        open.Stdout.Trim().ShouldStartWith($"http://{owner.Auth.Team.Id}.preview.localhost:");
        open.Stdout.ShouldContain("/.covibe/open?code=");

        // A broken commit, redeployed by hand: logs -f says it failed, and exits 1.
        _repo.Commit("broken", new() { ["covibe.preview.json"] = """{"build": "echo no such tool; exit 7", "static": "."}""" });
        (await sarah.RunAsync(null, "preview", "redeploy")).ExitCode.ShouldBe(0);
        var failed = await sarah.RunAsync(null, "preview", "logs", "-f");
        failed.ExitCode.ShouldBe(1);
        failed.Stdout.ShouldContain("no such tool");
        failed.Stderr.ShouldContain("The build failed (exit code 7)");

        var notConnected = await new CliRunner(Path.Combine(_root, "sarah")).RunAsync(null, "preview", "cancel");
        notConnected.ExitCode.ShouldBe(1);
        notConnected.Stderr.ShouldContain("Nothing to cancel");
    }

    public void Dispose()
    {
        _repo.Dispose();
        StartupTests.Delete(_root);
    }
}
