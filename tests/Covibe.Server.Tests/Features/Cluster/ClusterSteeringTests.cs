using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Steering together across nodes and crashes (issue 26): a grant made on node A reaches a watcher on node B at once and a
/// revocation there refuses the next input; a request asked on the node that follows the agent is answered from the
/// other; a server killed -9 while a request waits finds it again, still answerable, never answered twice.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed class ClusterSteeringTests(PostgresServer postgres, RedisServer redis) : IClassFixture<PostgresServer>
{
    private async Task<(TestServer A, TestServer B)> StartNodesAsync()
    {
        var database = await postgres.CreateDatabaseAsync();
        // One set of cluster settings for both: its channel is what makes them one cluster.
        var cluster = redis.ClusterSettings();
        void AddCluster(Dictionary<string, string> settings)
        {
            foreach (var (key, value) in cluster)
            {
                settings[key] = value;
            }
        }
        var a = await AgentApprovalTests.StartAsync(AddCluster, data: null, postgres: database);
        var b = await AgentApprovalTests.StartAsync(AddCluster, data: null, postgres: database);
        return (a, b);
    }

    [Fact]
    public async Task AGrantOnNodeA_ChangesCanControlForAWatcherOnNodeB_AndARevocationRefusesTheNextInput()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, miguel) = await a.CreateTeamWithMemberAsync();
        await using var miguelOnB = await ClusterTests.JoinedAsync(b, miguel.AccessToken);
        using var sarahOnA = a.Client(owner.Auth.AccessToken);
        using var miguelRestB = b.Client(miguel.AccessToken);

        var agent = await a.SpawnAsync(owner.Auth.AccessToken, "echo what you are told", "echo");
        await miguelOnB.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        (await miguelOnB.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output", TimeSpan.FromSeconds(20))).GetProperty("canControl").GetBoolean().ShouldBeFalse();

        (await sarahOnA.PostAsJsonAsync($"/api/agent/{agent.Id}/control", new GrantControlRequest(miguel.User.Id))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await miguelOnB.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_status" && m.GetProperty("agent").GetProperty("canControl").GetBoolean(), TimeSpan.FromSeconds(10)))
            .GetProperty("agentId").GetString().ShouldBe(agent.Id);
        (await miguelRestB.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("from node B\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var echoed = await miguelOnB.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output" && m.GetProperty("data").GetString()!.Contains("echo: from node B"), TimeSpan.FromSeconds(20));
        echoed.GetProperty("canControl").GetBoolean().ShouldBeTrue("node B's feed of the agent knows of the grant made on node A");

        (await sarahOnA.DeleteAsync($"/api/agent/{agent.Id}/control/{miguel.User.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        await (await miguelRestB.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("too late\n"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await sarahOnA.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("from sarah\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await miguelOnB.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output" && m.GetProperty("data").GetString()!.Contains("echo: from sarah"), TimeSpan.FromSeconds(20)))
            .GetProperty("canControl").GetBoolean().ShouldBeFalse();
        (await sarahOnA.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task ARequestAskedOnTheNodeFollowingTheAgent_IsHeardAndAnsweredOnTheOther()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var owner = await a.CreateTeamAsync();
        await using var sarahOnB = await ClusterTests.JoinedAsync(b, owner.Auth.AccessToken);
        var agent = await a.SpawnAsync(owner.Auth.AccessToken, "Run the tests", "claude");
        var asked = (await sarahOnB.ReceiveAsync("agent_permission_request", TimeSpan.FromSeconds(20))).GetProperty("request");
        using var sarahRestB = b.Client(owner.Auth.AccessToken);
        (await sarahRestB.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(asked.GetProperty("requestId").GetString()))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await b.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30))).Status.ShouldBe("completed");
        var events = (await sarahRestB.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events;
        events.Single(e => e.Kind == "tool_result").Text.ShouldBe("Tests: 12 passed, 12 total");
    }

    [Fact]
    public async Task AServerKilledWhileARequestWaits_FindsItAgainAfterItsRestart_AndItIsAnsweredOnce()
    {
        var settings = new Dictionary<string, string>(AgentHelpers.Settings());
        var path = $"{ClaudeServerFixture.FakeDirectory}:{Environment.GetEnvironmentVariable("PATH")}";
        settings["Covibe:Agents:Types:claude:Environment:PATH"] = path;
        settings["Covibe:Agents:Permissions:Mode"] = "ask";
        settings["Covibe:Agents:Permissions:AllowBypass"] = "false";
        var node = await ClusterNode.StartAsync("solo", "", settings);
        await using var _ = node;
        using var http = new HttpClient { BaseAddress = node.Url, Timeout = TimeSpan.FromSeconds(60) };
        var created = await AgentMergeTests.OkAsync<CreateTeamResponse>(await http.PostAsJsonAsync("/api/team/create",
            new CreateTeamRequest("Killed", "Sarah", $"sarah{Guid.NewGuid():N}@example.com", TestServer.Password)), HttpStatusCode.Created);
        http.DefaultRequestHeaders.Authorization = new("Bearer", created.Auth.AccessToken);
        var agent = await AgentMergeTests.OkAsync<AgentDto>(await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("Take notes [[write]]", "claude")), HttpStatusCode.Created);
        var bash = await AgentApprovalTests.WaitForRequestAsync(http, agent.Id);

        await node.KillAsync();
        await node.StartAsync();

        // The same request, still waiting (not asked again under another id), answerable once.
        var after = await AgentApprovalTests.WaitForRequestAsync(http, agent.Id);
        after.RequestId.ShouldBe(bash.RequestId);
        (await http.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(bash.RequestId))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await http.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(bash.RequestId))).StatusCode.ShouldBe(HttpStatusCode.Conflict);
        var write = await AgentApprovalTests.WaitForRequestAsync(http, agent.Id, "Write");
        (await http.PostAsJsonAsync($"/api/agent/{agent.Id}/deny", new DenyRequest(write.RequestId, "no"))).StatusCode.ShouldBe(HttpStatusCode.OK);

        var done = await Eventually.UntilAsync(async () => (await http.GetFromJsonAsync<AgentDto>($"/api/agent/{agent.Id}"))!, a => AgentStatuses.IsFinal(a.Status), "the agent ends");
        done.Status.ShouldBe("completed");
        var requests = (await http.GetFromJsonAsync<AgentPermissionsResponse>($"/api/agent/{agent.Id}/approvals"))!.Requests;
        requests.Select(r => (r.Tool, r.Status)).ShouldBe([("Bash", "allowed"), ("Write", "denied")]);
        var events = (await http.GetFromJsonAsync<AgentEventsResponse>($"/api/agent/{agent.Id}/events?limit=1000"))!.Events;
        events.Where(e => e.Kind == "tool_result").Select(e => e.IsError).ShouldBe([false, true], "each tool ran (or not) once");
    }
}
