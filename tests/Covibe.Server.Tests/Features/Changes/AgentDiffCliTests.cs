using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary><c>covibe agent spawn --base</c> and <c>covibe agent diff</c> driven as processes: a teammate reads what the agent changed.</summary>
public sealed class AgentDiffCliTests : IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();
    private readonly GitRepo _source = GitRepo.Create();

    [Fact]
    public async Task SpawnOnABaseBranch_ThenATeammateReadsTheStatAndTheDiff()
    {
        var baseCommit = _source.Commit("base", new() { ["README.md"] = "the base" });
        await using var server = await TestServer.StartAsync(settings: AgentChangesTests.Settings());
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        var (_, forge) = await AgentChangesTests.ConnectAsync(ann, _source);
        await using var _ = forge;
        var sarah = new CliRunner(Path.Combine(_root, "sarah"));
        (await sarah.RunAsync(TestServer.Password, "login", "--server", server.Url.ToString(), "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
        var miguel = new CliRunner(Path.Combine(_root, "miguel"));
        (await miguel.RunAsync(TestServer.Password, "login", "--server", server.Url.ToString(), "--email", member.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);

        var spawned = await sarah.RunAsync(null, "agent", "spawn", "written-by-the-agent", "--type", "probe", "--base", "main");
        spawned.ExitCode.ShouldBe(0, spawned.Stderr);
        var id = spawned.Stdout.Trim();
        spawned.Stderr.ShouldContain($"On its own branch covibe/{id[..8]}-written-by-the-agent, from main at {baseCommit[..7]}");
        await server.WaitFinishedAsync(owner.Auth.AccessToken, id);

        var stat = await miguel.RunAsync(null, "agent", "diff", id[..10], "--stat");
        stat.ExitCode.ShouldBe(0, stat.Stderr);
        stat.Stdout.ShouldContain($"1 file changed, 1 insertions(+), 0 deletions(-) since {baseCommit[..7]}");
        stat.Stdout.ShouldMatch(@"(?m)^ A work\.txt\s+\+1 -0$");
        var diff = await miguel.RunAsync(null, "agent", "diff", id, "work.txt");
        diff.ExitCode.ShouldBe(0, diff.Stderr);
        diff.Stdout.ShouldContain("+written-by-the-agent");

        var wrong = await miguel.RunAsync(null, "agent", "spawn", "x", "--type", "probe", "--base", "--nope");
        wrong.ExitCode.ShouldNotBe(0);
    }

    public void Dispose()
    {
        _source.Dispose();
        StartupTests.Delete(_root);
    }
}
