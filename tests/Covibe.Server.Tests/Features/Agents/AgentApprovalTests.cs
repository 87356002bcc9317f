using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Claude's permission prompts answered by the team (issue 26), against the faithful fake CLI, which asks before Bash and
/// Write as the real one does with <c>--permission-prompt-tool stdio</c>.
/// </summary>
public sealed class AgentApprovalTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    internal static Task<TestServer> StartAsync(Action<Dictionary<string, string>>? configure = null, string? data = null, string? postgres = null)
    {
        var settings = AgentHelpers.Settings();
        var path = $"{ClaudeServerFixture.FakeDirectory}:{Environment.GetEnvironmentVariable("PATH")}";
        settings["Covibe:Agents:Types:claude:Environment:PATH"] = path;
        settings["Covibe:Agents:Types:claude-chat:Environment:PATH"] = path;
        // The server's default: every tool call Claude would ask about waits for the team; bypass is not allowed.
        settings["Covibe:Agents:Permissions:Mode"] = "ask";
        settings["Covibe:Agents:Permissions:AllowBypass"] = "false";
        configure?.Invoke(settings);
        return TestServer.StartAsync(postgres: postgres, settings: settings, dataDirectory: data);
    }

    [Fact]
    public async Task TheOwnerApprovesAndDenies_TheTeamSeesWhoAnswered_AViewersAnswerIsRefusedAndReachesNothing()
    {
        var (owner, member) = await _server.CreateTeamWithMemberAsync();
        await using var ownerHub = await _server.ConnectAsync();
        await ownerHub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        await using var memberHub = await _server.ConnectAsync();
        await memberHub.JoinAsync(owner.Auth.Team.Id, member.AccessToken);
        using var ownerApi = _server.Client(owner.Auth.AccessToken);
        using var memberApi = _server.Client(member.AccessToken);

        var agent = await _server.SpawnAsync(owner.Auth.AccessToken, "Take notes [[write]]", "claude");
        agent.PermissionMode.ShouldBe("ask");

        // Asked before Bash: the owner may answer, the teammate sees it.
        var asked = (await ownerHub.ReceiveAsync("agent_permission_request", TimeSpan.FromSeconds(20))).GetProperty("request");
        asked.GetProperty("tool").GetString().ShouldBe("Bash");
        asked.GetProperty("input").GetProperty("command").GetString().ShouldBe("npm test");
        asked.GetProperty("suggestions")[0].GetProperty("rules")[0].GetProperty("ruleContent").GetString().ShouldBe("npm test");
        var seen = await memberHub.ReceiveAsync("agent_permission_request");
        seen.GetProperty("canAnswer").GetBoolean().ShouldBeFalse();
        var requestId = asked.GetProperty("requestId").GetString()!;
        (await _server.GetAgentAsync(member.AccessToken, agent.Id)).PendingApprovals.ShouldBe(1);

        // A viewer's answer is refused, and the agent still waits: nothing reached it.
        await (await memberApi.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(requestId))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await memberApi.PostAsJsonAsync($"/api/agent/{agent.Id}/deny", new DenyRequest(requestId, "no"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        var stillWaiting = (await ownerApi.GetFromJsonAsync<AgentPermissionsResponse>($"/api/agent/{agent.Id}/approvals"))!.Requests.ShouldHaveSingleItem();
        stillWaiting.Status.ShouldBe("pending");
        (await ResultsOfAsync(ownerApi, agent.Id)).ShouldBeEmpty();

        // The owner allows it (the oldest waiting, no id given): the agent goes on, the team hears who did.
        using (var allowed = await ownerApi.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest()))
        {
            allowed.StatusCode.ShouldBe(HttpStatusCode.OK, await allowed.Content.ReadAsStringAsync());
            var answer = (await allowed.Content.ReadFromJsonAsync<AgentPermissionDto>())!;
            (answer.RequestId, answer.Status, answer.DecidedByName).ShouldBe((requestId, "allowed", "Sarah"));
        }
        var told = (await memberHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_permission_answered"
            && m.GetProperty("request").GetProperty("requestId").GetString() == requestId)).GetProperty("request");
        told.GetProperty("decidedByName").GetString().ShouldBe("Sarah");

        // Then Write: denied with a message, which Claude reads; the tool does not run.
        var write = (await ownerHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_permission_request"
            && m.GetProperty("request").GetProperty("tool").GetString() == "Write", TimeSpan.FromSeconds(20))).GetProperty("request");
        write.GetProperty("input").GetProperty("file_path").GetString().ShouldBe("notes.txt");
        (await ownerApi.PostAsJsonAsync($"/api/agent/{agent.Id}/deny", new DenyRequest(write.GetProperty("requestId").GetString(), "Not in the repository root, please.")))
            .StatusCode.ShouldBe(HttpStatusCode.OK);

        var done = await _server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30));
        done.ShouldSatisfyAllConditions(d => d.Status.ShouldBe("completed"), d => d.PendingApprovals.ShouldBe(0));
        var events = (await ownerApi.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events;
        var results = events.Where(e => e.Kind == "tool_result").ToList();
        results[0].ShouldSatisfyAllConditions(r => r.Text.ShouldBe("Tests: 12 passed, 12 total"), r => r.IsError.ShouldBe(false));
        results[1].ShouldSatisfyAllConditions(r => r.Text.ShouldBe("Not in the repository root, please."), r => r.IsError.ShouldBe(true));
        events.Count(e => e.Kind == "permission_request").ShouldBe(2);
        var output = Encoding.UTF8.GetString(await _server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        output.ShouldNotContain("File created successfully");
        output.ShouldContain("\"permission_denials\":[{\"tool_name\":\"Write\"");

        // Listed over REST with who answered and how.
        var all = (await memberApi.GetFromJsonAsync<AgentPermissionsResponse>($"/api/agent/{agent.Id}/approvals"))!.Requests;
        all.Select(r => (r.Tool, r.Status, r.DecidedByName)).ShouldBe([("Bash", "allowed", "Sarah"), ("Write", "denied", "Sarah")]);
        all[1].Message.ShouldBe("Not in the repository root, please.");

        // Answering again is a clear conflict that names who answered.
        var again = await (await ownerApi.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(requestId))).ShouldBeProblemAsync(HttpStatusCode.Conflict, "already-answered");
        again.GetProperty("detail").GetString()!.ShouldContain("allowed by Sarah");
    }

    [Fact]
    public async Task TwoAnswersAtOnce_ExactlyOneCounts_AndTheOtherIsTold()
    {
        var owner = await _server.CreateTeamAsync();
        using var phone = _server.Client(owner.Auth.AccessToken);
        using var laptop = _server.Client(owner.Auth.AccessToken);
        var agent = await _server.SpawnAsync(owner.Auth.AccessToken, "Run them", "claude");
        var request = await WaitForRequestAsync(phone, agent.Id);

        var answers = await Task.WhenAll(
            phone.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(request.RequestId)),
            laptop.PostAsJsonAsync($"/api/agent/{agent.Id}/deny", new DenyRequest(request.RequestId, "stop")));
        answers.Select(a => a.StatusCode).Order().ShouldBe([HttpStatusCode.OK, HttpStatusCode.Conflict]);
        var counted = answers.Single(a => a.StatusCode == HttpStatusCode.OK);
        var status = (await counted.Content.ReadFromJsonAsync<AgentPermissionDto>())!.Status;

        (await _server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30))).Status.ShouldBe("completed");
        var results = (await phone.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events.Where(e => e.Kind == "tool_result").ToList();
        results.ShouldHaveSingleItem().IsError.ShouldBe(status == "denied");
        (await phone.GetFromJsonAsync<AgentPermissionsResponse>($"/api/agent/{agent.Id}/approvals"))!.Requests.ShouldHaveSingleItem().Status.ShouldBe(status);
    }

    [Fact]
    public async Task AllowAlways_AsksNoMoreForThatRule_AndTheOperatorsRulesDecideWithoutAsking()
    {
        await using var server = await StartAsync(s =>
        {
            s["Covibe:Agents:Permissions:Deny:0"] = "Write(*.txt)";
        });
        var owner = await server.CreateTeamAsync();
        using var api = server.Client(owner.Auth.AccessToken);
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "First [[write]]", "claude-chat");
        var bash = await WaitForRequestAsync(api, agent.Id);
        // The rule Claude suggested (Bash(npm test)), from now on.
        var allowed = await (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(bash.RequestId, Suggestion: 0))).Content.ReadFromJsonAsync<AgentPermissionDto>();
        allowed!.Always.ShouldBeTrue();
        await Eventually.UntilAsync(() => server.GetAgentAsync(owner.Auth.AccessToken, agent.Id), a => a.Status == "waiting", "the first turn ends");

        // The operator's deny rule answered Write without asking anyone.
        var requests = (await api.GetFromJsonAsync<AgentPermissionsResponse>($"/api/agent/{agent.Id}/approvals"))!.Requests;
        requests.Select(r => (r.Tool, r.Status)).ShouldBe([("Bash", "allowed"), ("Write", "denied")]);
        requests[1].ShouldSatisfyAllConditions(r => r.DecidedBy.ShouldBeNull(), r => r.Reason.ShouldBe("the operator's rule Write(*.txt)"));

        // The second turn runs npm test again: not asked.
        (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("Again"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await Eventually.UntilAsync(async () => (await api.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events.Count(e => e.Kind == "result"),
            n => n == 2, "the second turn ends");
        (await api.GetFromJsonAsync<AgentPermissionsResponse>($"/api/agent/{agent.Id}/approvals"))!.Requests.Count(r => r.Tool == "Bash").ShouldBe(1);
        (await api.PostAsync($"/api/agent/{agent.Id}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
    }

    [Fact]
    public async Task AnUnansweredRequest_IsDeniedAtItsDeadline_WithAMessage_AndTheAgentGoesOn()
    {
        await using var server = await StartAsync(s => s["Covibe:Agents:ApprovalTimeoutSeconds"] = "1");
        var owner = await server.CreateTeamAsync();
        await using var hub = await server.ConnectAsync();
        await hub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "Wait for me", "claude");
        var answered = (await hub.ReceiveAsync("agent_permission_answered", TimeSpan.FromSeconds(20))).GetProperty("request");
        answered.GetProperty("status").GetString().ShouldBe("timed-out");

        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30))).Status.ShouldBe("completed");
        using var api = server.Client(owner.Auth.AccessToken);
        var result = (await api.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events.Single(e => e.Kind == "tool_result");
        result.IsError.ShouldBe(true);
        result.Text!.ShouldStartWith("Nobody on the team answered this permission request within 1 s");
    }

    [Fact]
    public async Task BadAnswers_GetClearErrors_AndBypassIsOnlyWhereTheOperatorAllowsIt()
    {
        var owner = await _server.CreateTeamAsync();
        using var api = _server.Client(owner.Auth.AccessToken);
        await (await api.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "claude", PermissionMode: "bypass")))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        await (await api.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "claude", PermissionMode: "yolo")))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        await (await api.PostAsJsonAsync("/api/agent/nope/approve", new ApproveRequest())).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");

        var agent = await _server.SpawnAsync(owner.Auth.AccessToken, "Edit it", "claude");
        var request = await WaitForRequestAsync(api, agent.Id);
        await (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest("not-a-request"))).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(request.RequestId, Suggestion: 7))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        using var notAnObject = JsonDocument.Parse("\"rm -rf /\"");
        await (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(request.RequestId, UpdatedInput: notAnObject.RootElement))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");

        // The member may change what runs: the tool runs with the input they allowed.
        using var edited = JsonDocument.Parse("""{"command":"npm test -- --bail","description":"Run the tests"}""");
        (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(request.RequestId, UpdatedInput: edited.RootElement))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await _server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30));
        (await api.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events.Single(e => e.Kind == "tool_result").Text.ShouldBe("Ran: npm test -- --bail");
    }

    [Fact]
    public async Task TheBuiltInMockAgent_AsksBeforeWriting_WritesWhatWasAllowed_AndReportsADenialAsClaudeDoes()
    {
        await using var server = await StartAsync(s => s["Covibe:Agents:MockSteps"] = "4");
        var owner = await server.CreateTeamAsync();
        using var api = server.Client(owner.Auth.AccessToken);
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "Add the steps", "mock-code-writer");
        agent.PermissionMode.ShouldBe("ask");

        var first = await WaitForRequestAsync(api, agent.Id, "Write");
        first.Input.GetProperty("file_path").GetString().ShouldBe("src/step2.ts");
        // Allowed as changed by the member: it writes there.
        using var edited = JsonDocument.Parse("""{"file_path":"src/approved.ts","content":"export const approved = true;\n"}""");
        (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(first.RequestId, UpdatedInput: edited.RootElement))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var second = await WaitForRequestAsync(api, agent.Id, "Write");
        second.Input.GetProperty("file_path").GetString().ShouldBe("src/step4.ts");
        (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/deny", new DenyRequest(second.RequestId, "No more files."))).StatusCode.ShouldBe(HttpStatusCode.OK);

        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
        var events = (await api.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events;
        events.Where(e => e.Kind == "tool_result").Select(e => (e.Text, e.IsError)).ShouldBe([("File created successfully at: src/approved.ts", false), ("No more files.", true)]);
        events.Last(e => e.Kind == "result").Text.ShouldBe("Done: Add the steps\n\nWrote src/approved.ts.");
        Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).ShouldContain("\"permission_denials\":[{\"tool_name\":\"Write\"");
    }

    [Fact]
    public async Task EditsAndClaudesQuestions_ComeThroughTheSamePrompt_AndAnAnswerReachesClaude()
    {
        var owner = await _server.CreateTeamAsync();
        using var api = _server.Client(owner.Auth.AccessToken);
        var agent = await _server.SpawnAsync(owner.Auth.AccessToken, "Notes [[write]] [[edit]] [[question]]", "claude");
        foreach (var tool in new[] { "Bash", "Write", "Edit" })
        {
            var request = await WaitForRequestAsync(api, agent.Id, tool);
            if (tool == "Edit")
            {
                (request.Input.GetProperty("old_string").GetString(), request.Input.GetProperty("new_string").GetString()).ShouldBe(("Notes on", "Better notes on"));
            }
            (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(request.RequestId))).StatusCode.ShouldBe(HttpStatusCode.OK);
        }
        // The question: asked whatever the mode; answered with the choice in updatedInput.answers.
        var question = await WaitForRequestAsync(api, agent.Id, "AskUserQuestion");
        var asked = question.Input.GetProperty("questions")[0];
        asked.GetProperty("options").EnumerateArray().Select(o => o.GetProperty("label").GetString()).ShouldBe(["SQLite", "PostgreSQL"]);
        var text = asked.GetProperty("question").GetString()!;
        var answered = JsonSerializer.SerializeToElement(new Dictionary<string, object>
        {
            ["questions"] = question.Input.GetProperty("questions"),
            ["answers"] = new Dictionary<string, string> { [text] = "PostgreSQL" },
        });
        (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(question.RequestId, UpdatedInput: answered))).StatusCode.ShouldBe(HttpStatusCode.OK);

        (await _server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30))).Status.ShouldBe("completed");
        var results = (await api.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events.Where(e => e.Kind == "tool_result").Select(e => e.Text).ToList();
        results[2].ShouldBe("The file notes.txt has been updated.");
        results[3].ShouldBe($"Your questions have been answered: \"{text}\"=\"PostgreSQL\". You can now continue with these answers in mind.");
        var actions = (await api.GetFromJsonAsync<AgentActionsResponse>($"/api/agent/{agent.Id}/actions"))!.Actions.Select(a => a.Text).ToList();
        actions.ShouldContain("allowed Edit: notes.txt");
    }

    internal static async Task<AgentPermissionDto> WaitForRequestAsync(HttpClient api, string agentId, string tool = "Bash") =>
        await Eventually.UntilAsync(
            async () => (await api.GetFromJsonAsync<AgentPermissionsResponse>($"/api/agent/{agentId}/approvals"))!.Requests.FirstOrDefault(r => r.Tool == tool && r.Status == "pending"),
            r => r is not null, $"the agent asks to use {tool}") ?? throw new InvalidOperationException();

    private static async Task<AgentEvent[]> ResultsOfAsync(HttpClient api, string agentId) =>
        [.. (await api.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agentId}/events?limit=1000"))!.Events.Where(e => e.Kind == "tool_result")];
}
