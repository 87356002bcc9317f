using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Handing an agent over (issue 26, point 2) and who did what (point 3): the owner grants and takes back control, a member
/// asks for it, the team's owner takes a member's agent over; canControl follows at once per viewer; every action is kept
/// in the agent's stream with who did it and replayed in place.
/// </summary>
public sealed class AgentHandoverTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await AgentApprovalTests.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task AGrantLetsATeammateControlAtOnce_ARevocationStopsTheirNextInput_AndTheStreamSaysWhoDidWhat()
    {
        var (owner, miguel) = await _server.CreateTeamWithMemberAsync();
        using var sarahApi = _server.Client(owner.Auth.AccessToken);
        using var miguelApi = _server.Client(miguel.AccessToken);
        await using var miguelHub = await _server.ConnectAsync();
        await miguelHub.JoinAsync(owner.Auth.Team.Id, miguel.AccessToken);

        var agent = await _server.SpawnAsync(owner.Auth.AccessToken, "echo things", "echo");
        var first = await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output" && m.GetProperty("agentId").GetString() == agent.Id);
        first.GetProperty("canControl").GetBoolean().ShouldBeFalse();
        await (await miguelApi.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("hello\n"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");

        // Miguel asks; Sarah hears it and may grant it; Miguel's own copy says he cannot.
        await using var sarahHub = await _server.ConnectAsync();
        await sarahHub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        (await miguelApi.PostAsync($"/api/agent/{agent.Id}/control/ask", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var asked = await sarahHub.ReceiveAsync("agent_control_requested");
        (asked.GetProperty("userName").GetString(), asked.GetProperty("canGrant").GetBoolean()).ShouldBe(("Miguel", true));
        (await miguelHub.ReceiveAsync("agent_control_requested")).GetProperty("canGrant").GetBoolean().ShouldBeFalse();
        // Asking again and again does not ring the owner's phone again and again.
        (await miguelApi.PostAsync($"/api/agent/{agent.Id}/control/ask", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await miguelApi.PostAsync($"/api/agent/{agent.Id}/control/ask", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        await (await miguelApi.PostAsync($"/api/agent/{agent.Id}/control/ask", null)).ShouldBeProblemAsync(HttpStatusCode.TooManyRequests, "rate-limited");

        // A teammate cannot hand someone else's agent on.
        await (await miguelApi.PostAsJsonAsync($"/api/agent/{agent.Id}/control", new GrantControlRequest(miguel.User.Id))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");

        // Sarah grants it: Miguel's status and his next frame of output say he controls it, and his input goes in.
        var granted = await (await sarahApi.PostAsJsonAsync($"/api/agent/{agent.Id}/control", new GrantControlRequest(miguel.User.Id))).Content.ReadFromJsonAsync<AgentControllersResponse>();
        granted!.Controllers.ShouldHaveSingleItem().Name.ShouldBe("Miguel");
        // (An earlier status of the agent, its start, may still be on its way to him: the one that says he controls it follows.)
        await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_status" && m.GetProperty("agentId").GetString() == agent.Id
            && m.GetProperty("agent").GetProperty("canControl").GetBoolean(), what: "agent_status saying Miguel controls the agent");
        (await _server.GetAgentAsync(miguel.AccessToken, agent.Id)).CanControl.ShouldBeTrue();
        (await _server.Client(miguel.AccessToken).GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.Single(a => a.Id == agent.Id).CanControl.ShouldBeTrue();
        (await miguelApi.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("from miguel\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var echoed = await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output" && m.GetProperty("data").GetString()!.Contains("echo: from miguel"));
        echoed.GetProperty("canControl").GetBoolean().ShouldBeTrue();

        // Taken back: his next input is refused, and nothing of it reaches the agent.
        (await sarahApi.DeleteAsync($"/api/agent/{agent.Id}/control/{miguel.User.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        await (await miguelApi.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("too late\n"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await sarahApi.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("from sarah\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var sarahs = await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output" && m.GetProperty("data").GetString()!.Contains("echo: from sarah"));
        sarahs.GetProperty("canControl").GetBoolean().ShouldBeFalse();
        (await _server.OutputAsync(owner.Auth.AccessToken, agent.Id)).ShouldSatisfyAllConditions(o => System.Text.Encoding.UTF8.GetString(o).ShouldNotContain("too late"));

        // Who did what, in order, with names.
        var actions = (await miguelApi.GetFromJsonAsync<AgentActionsResponse>($"/api/agent/{agent.Id}/actions"))!.Actions;
        actions.Select(a => $"{a.ByName} {a.Text}").ShouldBe([
            "Miguel asked for control", "Miguel asked for control", "Miguel asked for control", "Sarah gave control to Miguel", "Miguel sent: from miguel", "Sarah took control back from Miguel", "Sarah sent: from sarah"]);
        actions.Select(a => a.Position).ShouldBeInOrder();

        // A late joiner subscribing from the start gets them to show in place as the output replays.
        await using var late = await _server.ConnectAsync();
        await late.SendAsync(new { type = "join_team", teamId = owner.Auth.Team.Id, token = miguel.AccessToken, followAgents = false });
        await late.ReceiveAsync("team_joined");
        await late.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var replayed = await late.ReceiveAsync("agent_actions");
        replayed.GetProperty("actions").EnumerateArray().Select(a => a.GetProperty("text").GetString()).ShouldContain("sent: from miguel");
        var sentAt = replayed.GetProperty("actions").EnumerateArray().First(a => a.GetProperty("text").GetString() == "sent: from sarah").GetProperty("position").GetInt64();
        var output = await _server.OutputAsync(owner.Auth.AccessToken, agent.Id);
        System.Text.Encoding.UTF8.GetString(output[..(int)sentAt]).ShouldNotContain("echo: from sarah");
        (await sarahApi.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task ADelegatedTeammateAnswersPrompts_TheWholeTeamCanBeGivenControl_AndTheTeamsOwnerTakesOver()
    {
        var (owner, miguel) = await _server.CreateTeamWithMemberAsync();
        var lena = await _server.JoinAsync(owner.Invite.InviteCode, "Lena");
        using var sarahApi = _server.Client(owner.Auth.AccessToken);
        using var miguelApi = _server.Client(miguel.AccessToken);
        using var lenaApi = _server.Client(lena.AccessToken);

        // Sarah's agent, handed to the whole team: Lena answers its prompt.
        var agent = await _server.SpawnAsync(owner.Auth.AccessToken, "Run the tests", "claude");
        var request = await AgentApprovalTests.WaitForRequestAsync(sarahApi, agent.Id);
        await (await lenaApi.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(request.RequestId))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await sarahApi.PostAsJsonAsync($"/api/agent/{agent.Id}/control", new GrantControlRequest(WholeTeam: true))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var answered = await (await lenaApi.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(request.RequestId))).Content.ReadFromJsonAsync<AgentPermissionDto>();
        answered!.DecidedByName.ShouldBe("Lena");
        (await _server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30))).Status.ShouldBe("completed");
        var texts = (await miguelApi.GetFromJsonAsync<AgentActionsResponse>($"/api/agent/{agent.Id}/actions"))!.Actions.Select(a => $"{a.ByName} {a.Text}").ToList();
        texts.ShouldBe(["Sarah gave control to the whole team", "Lena allowed Bash: npm test"]);

        // Miguel's agent: the team's owner takes it over (the team allows it by default) ...
        var his = await _server.SpawnAsync(miguel.AccessToken, "echo", "echo");
        await (await lenaApi.PostAsync($"/api/agent/{his.Id}/control/take-over", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await sarahApi.PostAsync($"/api/agent/{his.Id}/control/take-over", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await _server.GetAgentAsync(owner.Auth.AccessToken, his.Id)).CanControl.ShouldBeTrue();
        (await sarahApi.DeleteAsync($"/api/agent/{his.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);

        // ... unless the team says no.
        await (await miguelApi.PutAsJsonAsync("/api/team/agent-settings", new TeamAgentSettings(null, false))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await sarahApi.PutAsJsonAsync("/api/team/agent-settings", new TeamAgentSettings(null, false))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var another = await _server.SpawnAsync(miguel.AccessToken, "echo", "echo");
        await (await sarahApi.PostAsync($"/api/agent/{another.Id}/control/take-over", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await miguelApi.DeleteAsync($"/api/agent/{another.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task TheTeamsMode_AppliesToItsNewAgents_AndBadSettingsAreRefused()
    {
        var owner = await _server.CreateTeamAsync();
        using var api = _server.Client(owner.Auth.AccessToken);
        await (await api.PutAsJsonAsync("/api/team/agent-settings", new TeamAgentSettings("bypass", true))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        (await api.PutAsJsonAsync("/api/team/agent-settings", new TeamAgentSettings("ask-but-allow-reads", true))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await api.GetFromJsonAsync<TeamAgentSettings>("/api/team/agent-settings"))!.PermissionMode.ShouldBe("ask-but-allow-reads");
        (await _server.SpawnAsync(owner.Auth.AccessToken, "x", "claude")).PermissionMode.ShouldBe("ask-but-allow-reads");
        (await (await api.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("y", "claude", PermissionMode: "ask"))).Content.ReadFromJsonAsync<AgentDto>())!.PermissionMode.ShouldBe("ask");
    }
}
