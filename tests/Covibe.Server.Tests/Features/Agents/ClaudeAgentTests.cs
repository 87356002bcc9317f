using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>A server whose <c>claude</c> is the faithful fake in tests/assets/fake-claude.</summary>
public sealed class ClaudeServerFixture : IAsyncLifetime
{
    public static readonly string FakeDirectory = Path.Combine(AppContext.BaseDirectory, "fake-claude");

    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var path = $"{FakeDirectory}:{Environment.GetEnvironmentVariable("PATH")}";
        var settings = AgentHelpers.Settings();
        settings["Covibe:Agents:Types:claude:Environment:PATH"] = path;
        settings["Covibe:Agents:Types:claude-chat:Environment:PATH"] = path;
        // These tests are about parsing and turns: nothing is asked (AgentApprovalTests asks).
        Bypass(settings);
        // The seed's invocation without --verbose, to see the CLI refuse it.
        foreach (var (arg, i) in new[] { Path.Combine(FakeDirectory, "claude"), "-p", "{task}", "--output-format", "stream-json" }.Select((a, i) => (a, i)))
        {
            settings[$"Covibe:Agents:Types:claude-quiet:Command:{i}"] = arg;
        }
        Server = await TestServer.StartAsync(settings: settings);
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Agents run without asking: Claude is launched in bypassPermissions mode.</summary>
    public static void Bypass(Dictionary<string, string> settings)
    {
        settings["Covibe:Agents:Permissions:Mode"] = "bypass";
        settings["Covibe:Agents:Permissions:AllowBypass"] = "true";
    }
}

/// <summary>The <c>claude</c> agent types, against the fake CLI: parsing, failures, conversation mode.</summary>
public sealed class ClaudeAgentTests(ClaudeServerFixture fixture) : IClassFixture<ClaudeServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Claude_OneShot_ReportsCostTokensAndStructuredEvents()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Fix the login bug [[thinking]]", "claude");
        var done = await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.ShouldSatisfyAllConditions(
            d => d.Status.ShouldBe("completed"),
            d => d.ExitCode.ShouldBe(0),
            d => d.CostUsd.ShouldBe(0.0125),
            d => d.InputTokens.ShouldBe(100),
            d => d.OutputTokens.ShouldBe(50),
            d => d.Model.ShouldBe("claude-fake-1"));

        using var client = Server.Client(owner.Auth.AccessToken);
        var events = (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!;
        events.Events.Select(e => e.Kind).ShouldBe(["init", "thinking", "text", "tool_use", "tool_result", "text", "text", "result"]);
        events.Events[2].Text.ShouldBe("Working on \"Fix the login bug\": step 1 of 3.");
        events.Events[3].Tool.ShouldBe("Bash");
        events.Events[3].Input!.Value.GetProperty("command").GetString().ShouldBe("npm test");
        events.Events[4].ToolUseId.ShouldBe(events.Events[3].ToolUseId);
        events.Events[^1].IsError.ShouldBe(false);

        // Paging events: the second page starts where the first ended.
        var first = (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=3"))!;
        var second = (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?from={first.Next}&limit=1000"))!;
        first.Events.Concat(second.Events).Select(e => e.Position).ShouldBe(events.Events.Select(e => e.Position));
        first.Complete.ShouldBeFalse();
        second.Complete.ShouldBeTrue();
    }

    [Fact]
    public async Task Claude_ErrorResult_IsAFailedAgent()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "[[error]] break", "claude");
        var done = await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.Status.ShouldBe("failed");
        // Its task came in as a stream-json message: the CLI may exit 0 after the failed turn; its result decides.
        done.Error.ShouldBe("Its turn ended in an error: Something went wrong (fake).");
        using var client = Server.Client(owner.Auth.AccessToken);
        var events = (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!;
        events.Events[^1].ShouldSatisfyAllConditions(e => e.Kind.ShouldBe("result"), e => e.IsError.ShouldBe(true));
    }

    [Fact]
    public async Task Claude_CrashMidLine_KeepsTheHalfLineAndParsesEverythingBefore()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "[[crash]] [[lines=4]] go", "claude");
        var done = await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.Status.ShouldBe("failed");
        done.ExitCode.ShouldBe(3);
        var output = Encoding.UTF8.GetString(await Server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        output.ShouldEndWith("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"te");
        using var client = Server.Client(owner.Auth.AccessToken);
        var events = (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!;
        events.Complete.ShouldBeTrue();
        events.Events[^1].Kind.ShouldBe("output");
        events.Events.Count(e => e.Kind == "text").ShouldBe(2);
        done.CostUsd.ShouldBeNull();
    }

    [Fact]
    public async Task Claude_WithoutVerbose_FailsWithTheCliMessage()
    {
        var owner = await Server.CreateTeamAsync();
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "anything", "claude-quiet");
        var done = await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.Status.ShouldBe("failed");
        Encoding.UTF8.GetString(await Server.OutputAsync(owner.Auth.AccessToken, agent.Id))
            .ShouldContain("When using --print, --output-format=stream-json requires --verbose");
    }

    [Fact]
    public async Task ClaudeChat_TurnByTurn_WaitsForInput_InterruptsAndEnds()
    {
        var owner = await Server.CreateTeamAsync();
        using var client = Server.Client(owner.Auth.AccessToken);
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "First question", "claude-chat");
        await WaitStatusAsync(owner.Auth.AccessToken, agent.Id, "waiting");

        (await client.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("Second question"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await WaitForResultsAsync(owner.Auth.AccessToken, agent.Id, 2);
        await WaitStatusAsync(owner.Auth.AccessToken, agent.Id, "waiting");

        // A turn that would never end on its own: interrupt ends it as an error turn, the agent keeps going.
        (await client.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("[[stall]] Third"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await Server.GetAgentAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("running");
        await Task.Delay(300);
        (await client.PostAsync($"/api/agent/{agent.Id}/interrupt", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var results = await WaitForResultsAsync(owner.Auth.AccessToken, agent.Id, 3);
        results[^1].ShouldSatisfyAllConditions(r => r.IsError.ShouldBe(true), r => r.Text.ShouldBe("Interrupted."));
        await WaitStatusAsync(owner.Auth.AccessToken, agent.Id, "waiting");

        (await client.PostAsync($"/api/agent/{agent.Id}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var done = await Server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.Status.ShouldBe("completed");
        done.CostUsd.ShouldNotBeNull().ShouldBe(0.0375, 1e-9);
    }

    private Task<string> WaitStatusAsync(string token, string id, string status) =>
        Eventually.UntilAsync(async () => (await Server.GetAgentAsync(token, id)).Status, s => s == status, $"agent becomes {status}");

    private async Task<AgentEvent[]> WaitForResultsAsync(string token, string id, int count)
    {
        using var client = Server.Client(token);
        return await Eventually.UntilAsync(
            async () => (await client.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{id}/events?limit=1000"))!.Events.Where(e => e.Kind == "result").ToArray(),
            results => results.Length >= count, $"{count} results");
    }
}
