using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary><c>covibe box ...</c> and <c>covibe pool ...</c> driven as processes against a server whose boxes run in Podman.</summary>
[Collection(PodmanGroup.Name)]
public sealed class BoxCliTests(PodmanService podman) : IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task RequestWatchUseAndRelease_AndPools_FromTheCommandLine()
    {
        _repo.Commit("first", new() { ["README.md"] = "hello from the repository\n" });
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman));
        var url = server.Url.ToString().TrimEnd('/');
        var owner = await server.CreateTeamAsync();
        var sarah = new CliRunner(Path.Combine(_root, "sarah"));
        (await sarah.RunAsync(TestServer.Password, "login", "--server", url, "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
        var envFile = Path.Combine(_root, "app.env");
        await File.WriteAllTextAsync(envFile, "TOKEN=from-a-file\n");

        // No pool: the steps as they come, then the id.
        var request = await sarah.RunAsync(null, "box", "request", _repo.Path, "--env-file", envFile, "--requested-by", "ticket-9");
        request.ExitCode.ShouldBe(0, request.Stderr);
        request.Stderr.ShouldContain("[2/5] fetching main");
        request.Stderr.ShouldContain("[3/5] starting the box");
        request.Stderr.ShouldContain("Cloning into '/workspace'");
        request.Stderr.ShouldContain("[4/5] writing the .env");
        request.Stderr.ShouldContain("[5/5] ready");
        var boxId = request.Stdout.Trim();

        var agent = await sarah.RunAsync(null, "agent", "spawn", "look", "--type", "inside", "--box", boxId, "--follow");
        agent.ExitCode.ShouldBe(0, agent.Stderr);
        agent.Stderr.ShouldContain("in your box");
        agent.Stdout.ShouldContain("hello from the repository");

        var list = await sarah.RunAsync(null, "box", "ls");
        list.Stdout.ShouldContain(boxId);
        list.Stdout.ShouldContain("ready");
        var show = await sarah.RunAsync(null, "box", "show", boxId);
        show.Stdout.ShouldContain("ticket-9");
        show.Stdout.ShouldContain(".env:        yes");
        (await sarah.RunAsync(null, "box", "log", boxId)).Stdout.ShouldContain("Ready");

        // A pool: set, watched, claimed at once.
        var set = await sarah.RunAsync(null, "pool", "set", _repo.Path, "--min", "1", "--max", "2");
        set.ExitCode.ShouldBe(0, set.Stderr);
        await Eventually.UntilAsync(() => sarah.RunAsync(null, "pool", "ls"), r => r.Stdout.Contains("1 ready,", StringComparison.Ordinal), "the pool fills",
            TimeSpan.FromSeconds(90));
        var claim = await sarah.RunAsync(null, "box", "request", _repo.Path);
        claim.ExitCode.ShouldBe(0, claim.Stderr);
        claim.Stderr.ShouldContain("ready, from the warm pool");
        var pools = await sarah.RunAsync(null, "pool", "ls");
        pools.Stdout.ShouldContain("claims 1, misses 0, claim p50");

        (await sarah.RunAsync(null, "box", "rm", boxId)).Stdout.ShouldContain("Released");
        var missing = await sarah.RunAsync(null, "box", "show", "no-such-box");
        missing.ExitCode.ShouldBe(1);
        missing.Stderr.ShouldContain("no box 'no-such-box'");
        (await sarah.RunAsync(null, "pool", "rm", _repo.Path)).Stdout.ShouldContain("Pool removed");
    }

    public void Dispose()
    {
        _repo.Dispose();
        StartupTests.Delete(_root);
    }
}
