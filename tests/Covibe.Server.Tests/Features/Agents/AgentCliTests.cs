using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary><c>covibe agent ...</c> driven as a process against a running server.</summary>
public sealed class AgentCliTests(AgentServerFixture fixture) : IClassFixture<AgentServerFixture>, IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();

    [Fact]
    public async Task SpawnFollowListLogsAndControl_WorkFromTheCommandLine()
    {
        var server = fixture.Server.Url.ToString().TrimEnd('/');
        var owner = await fixture.Server.CreateTeamAsync("Cli agents");
        var sarah = new CliRunner(Path.Combine(_root, "sarah"));
        var miguel = new CliRunner(Path.Combine(_root, "miguel"));
        (await sarah.RunAsync(TestServer.Password, "login", "--server", server, "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
        (await miguel.RunAsync(TestServer.Password, "login", "--server", server, "--invite", owner.Invite.InviteCode, "--email", "miguel.agents@example.com", "--name", "Miguel", "--password-stdin")).ExitCode.ShouldBe(0);

        var spawned = await sarah.RunAsync(null, "agent", "spawn", "Add OAuth login", "--type", "mock-code-writer", "--follow");
        spawned.ExitCode.ShouldBe(0, spawned.Stderr);
        spawned.Stderr.ShouldContain("on the server, sandboxed");
        var agentId = spawned.Stdout.Split('\n')[0].Trim();
        agentId.Length.ShouldBe(32);
        spawned.Stdout.ShouldContain("I'll work on: Add OAuth login");
        spawned.Stdout.ShouldContain("→ Write: src/step2.ts");
        spawned.Stdout.ShouldContain("✓ Done: Add OAuth login");
        spawned.Stderr.ShouldContain("completed");

        var list = await miguel.RunAsync(null, "agent", "ls");
        list.Stdout.ShouldContain(agentId[..12]);
        list.Stdout.ShouldContain("completed");

        // A teammate reads the same output by a short id, readable or raw.
        var logs = await miguel.RunAsync(null, "agent", "logs", agentId[..10]);
        logs.ExitCode.ShouldBe(0, logs.Stderr);
        logs.Stdout.ShouldContain("✓ Done: Add OAuth login");
        var raw = await miguel.RunAsync(null, "agent", "logs", agentId, "--raw");
        raw.Stdout.ShouldBe(System.Text.Encoding.UTF8.GetString(AgentHelpers.LogOf(fixture.Server, agentId)));

        var echo = (await sarah.RunAsync(null, "agent", "spawn", "talk", "--type", "echo")).Stdout.Split('\n')[0].Trim();
        var notYours = await miguel.RunAsync(null, "agent", "kill", echo);
        notYours.ExitCode.ShouldBe(1);
        notYours.Stderr.ShouldContain("Only the agent's owner");
        (await sarah.RunAsync(null, "agent", "input", echo, "hello from the CLI")).ExitCode.ShouldBe(0);
        await Eventually.UntilAsync(async () => (await sarah.RunAsync(null, "agent", "logs", echo)).Stdout.Contains("echo: hello from the CLI", StringComparison.Ordinal),
            "the echo agent shows the input");
        (await sarah.RunAsync(null, "agent", "kill", echo)).ExitCode.ShouldBe(0);
        var follow = await sarah.RunAsync(null, "agent", "logs", echo, "-f");
        follow.ExitCode.ShouldBe(1, "a killed agent is not a success");
        follow.Stderr.ShouldContain("killed");

        var unknown = await sarah.RunAsync(null, "agent", "logs", "ffffffff");
        unknown.ExitCode.ShouldBe(1);
        unknown.Stderr.ShouldContain("No agent of your team");
    }

    public void Dispose() => StartupTests.Delete(_root);
}
