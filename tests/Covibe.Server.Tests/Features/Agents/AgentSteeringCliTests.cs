using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary><c>covibe agent approvals|approve|deny|give|take-back|actions</c> as processes against a server whose agents ask (issue 26).</summary>
public sealed class AgentSteeringCliTests : IAsyncLifetime
{
    private readonly string _root = StartupTests.TempDirectory();
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await AgentApprovalTests.StartAsync();

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        StartupTests.Delete(_root);
    }

    [Fact]
    public async Task TheOwnerAndWhomSheHandsTheAgentTo_AnswerItsRequestsFromTheTerminal()
    {
        var url = _server.Url.ToString().TrimEnd('/');
        var owner = await _server.CreateTeamAsync("Cli steering");
        var sarah = new CliRunner(Path.Combine(_root, "sarah"));
        var miguel = new CliRunner(Path.Combine(_root, "miguel"));
        (await sarah.RunAsync(TestServer.Password, "login", "--server", url, "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
        (await miguel.RunAsync(TestServer.Password, "login", "--server", url, "--invite", owner.Invite.InviteCode, "--email", "miguel.steer@example.com", "--name", "Miguel", "--password-stdin")).ExitCode.ShouldBe(0);

        var spawned = await sarah.RunAsync(null, "agent", "spawn", "Add the steps", "--type", "mock-code-writer");
        spawned.ExitCode.ShouldBe(0, spawned.Stderr);
        spawned.Stderr.ShouldContain("It asks before it runs commands or writes files");
        var id = spawned.Stdout.Split('\n')[0].Trim();
        using var api = _server.Client(owner.Auth.AccessToken);
        await AgentApprovalTests.WaitForRequestAsync(api, id, "Write");

        var listed = await miguel.RunAsync(null, "agent", "approvals", id[..10]);
        listed.ExitCode.ShouldBe(0, listed.Stderr);
        listed.Stdout.ShouldContain("Write: src/step2.ts");
        listed.Stdout.ShouldContain("waiting");
        (await miguel.RunAsync(null, "agent", "ls")).Stdout.ShouldContain("waiting for approval");

        var refused = await miguel.RunAsync(null, "agent", "approve", id);
        refused.ExitCode.ShouldNotBe(0);
        refused.Stderr.ShouldContain("Only the agent's owner");

        (await sarah.RunAsync(null, "agent", "give", id, "Miguel")).Stdout.ShouldContain("Controlled by Sarah, Miguel.");
        var allowed = await miguel.RunAsync(null, "agent", "approve", id);
        allowed.ExitCode.ShouldBe(0, allowed.Stderr);
        allowed.Stdout.ShouldContain("Allowed Write: src/step2.ts.");

        await AgentApprovalTests.WaitForRequestAsync(api, id, "Write");
        (await sarah.RunAsync(null, "agent", "deny", id, "-m", "enough files")).Stdout.ShouldContain("Denied Write: src/step4.ts.");
        (await sarah.RunAsync(null, "agent", "take-back", id, "Miguel")).Stdout.ShouldContain("Controlled by Sarah.");
        await AgentApprovalTests.WaitForRequestAsync(api, id, "Write");
        (await miguel.RunAsync(null, "agent", "approve", id)).ExitCode.ShouldNotBe(0);
        (await sarah.RunAsync(null, "agent", "approve", id)).Stdout.ShouldContain("Allowed Write: src/step6.ts.");

        (await _server.WaitFinishedAsync(owner.Auth.AccessToken, id)).Status.ShouldBe("completed");
        var actions = await miguel.RunAsync(null, "agent", "actions", id);
        actions.Stdout.ShouldContain("Sarah gave control to Miguel");
        actions.Stdout.ShouldContain("Miguel allowed Write: src/step2.ts");
        actions.Stdout.ShouldContain("Sarah denied Write: src/step4.ts: enough files");
        actions.Stdout.ShouldContain("Sarah took control back from Miguel");
        actions.Stdout.ShouldContain("Sarah allowed Write: src/step6.ts");

        // The readable log shows each request and, in place after it, who answered it.
        var logs = (await miguel.RunAsync(null, "agent", "logs", id)).Stdout;
        var asked = logs.IndexOf("? asks to use Write: src/step2.ts", StringComparison.Ordinal);
        var answered = logs.IndexOf("  · Miguel allowed Write: src/step2.ts", StringComparison.Ordinal);
        var written = logs.IndexOf("← File created successfully at: src/step2.ts", StringComparison.Ordinal);
        asked.ShouldBeGreaterThan(0, logs);
        answered.ShouldBeGreaterThan(asked, logs);
        written.ShouldBeGreaterThan(answered, logs);
        logs.ShouldContain("  · Sarah denied Write: src/step4.ts: enough files");
    }
}
