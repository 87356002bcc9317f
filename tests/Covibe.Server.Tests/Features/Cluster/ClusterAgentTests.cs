using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Agents across nodes (two <c>covibe serve</c> on one PostgreSQL and one Redis): a member on one node watches live an
/// agent another node follows, its owner controls it from either node, and when the node following it stops, another
/// takes it over and follows it to the end, with nothing lost.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed class ClusterAgentTests(PostgresServer postgres, RedisServer redis) : IClassFixture<PostgresServer>, IDisposable
{
    private readonly string _dataA = Path.Combine(Path.GetTempPath(), "covibe-test-" + Guid.NewGuid().ToString("N")[..10]);

    private async Task<(TestServer A, TestServer B)> StartNodesAsync(int leaseSeconds = 10)
    {
        var database = await postgres.CreateDatabaseAsync();
        var settings = AgentHelpers.Settings();
        foreach (var (key, value) in redis.ClusterSettings())
        {
            settings[key] = value;
        }
        settings["Covibe:Agents:LeaseSeconds"] = leaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // Node A's data directory outlives node A: its agents run on (from there) after it stops.
        return (await TestServer.StartAsync(postgres: database, settings: settings, dataDirectory: _dataA),
            await TestServer.StartAsync(postgres: database, settings: settings));
    }

    private byte[] LogOnA(string agentId) => File.ReadAllBytes(Path.Combine(_dataA, "agents", agentId, "output.log"));

    /// <summary>Reads agent_output of <paramref name="agentId"/> until <paramref name="text"/> has arrived; all of it, checked contiguous from <paramref name="from"/>.</summary>
    private static async Task<(byte[] Bytes, long Next)> ReadUntilAsync(HubClient hub, string agentId, string text, long from = 0)
    {
        var all = new MemoryStream();
        var next = from;
        while (!Encoding.UTF8.GetString(all.ToArray()).Contains(text, StringComparison.Ordinal))
        {
            var m = await hub.ReceiveAsync(e => e.GetProperty("type").GetString() == "agent_output" && e.GetProperty("agentId").GetString() == agentId,
                TimeSpan.FromSeconds(20), $"'{text}' from {agentId}");
            m.GetProperty("position").GetInt64().ShouldBe(next, "no gap, no overlap");
            var data = AgentHelpers.Decode(m);
            all.Write(data);
            next += data.Length;
        }
        return (all.ToArray(), next);
    }

    [Fact]
    public async Task AnAgentFollowedByNodeA_IsWatchedLiveOnNodeB_AndItsOwnerControlsItFromNodeB()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        await using var miguelOnB = await ClusterTests.JoinedAsync(b, member.AccessToken);
        await using var sarahOnB = await ClusterTests.JoinedAsync(b, owner.Auth.AccessToken);

        var agent = await a.SpawnAsync(owner.Auth.AccessToken, "echo what you are told", "echo");
        await miguelOnB.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (seen, next) = await ReadUntilAsync(miguelOnB, agent.Id, "ready\n");

        // The owner, on node B, types to the agent that node A follows; the teammate on node B sees the answer live.
        await sarahOnB.SendAsync(new { type = "agent_control", agentId = agent.Id, command = "input", data = "hello from node B\n" });
        var (more, after) = await ReadUntilAsync(miguelOnB, agent.Id, "echo: hello from node B", next);
        using var sarahRest = b.Client(owner.Auth.AccessToken);
        (await sarahRest.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("and over REST\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var (last, _) = await ReadUntilAsync(miguelOnB, agent.Id, "echo: and over REST", after);
        // A teammate on node B still cannot control it.
        using var miguelRest = b.Client(member.AccessToken);
        (await miguelRest.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("not mine\n"))).StatusCode.ShouldBe(HttpStatusCode.Forbidden);

        (await sarahRest.PostAsync($"/api/agent/{agent.Id}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await b.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
        var log = LogOnA(agent.Id);
        seen.Concat(more).Concat(last).ToArray().ShouldBe(log[..(seen.Length + more.Length + last.Length)]);
        (await miguelRest.OutputAsync(agent.Id)).ShouldBe(log, "node B serves the whole output over REST");
    }

    [Fact]
    public async Task AKillSentToNodeB_IsCarriedOutByTheNodeThatFollowsTheAgent_UpToSigkill()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var owner = await a.CreateTeamAsync();
        // It ignores SIGTERM: only the node that follows it escalates to SIGKILL after the grace period.
        var agent = await a.SpawnAsync(owner.Auth.AccessToken, "ignore SIGTERM", "stubborn");
        await Eventually.UntilAsync(() => b.GetAgentAsync(owner.Auth.AccessToken, agent.Id), x => x.Status == "running", "it runs");
        using var onB = b.Client(owner.Auth.AccessToken);
        (await onB.DeleteAsync($"/api/agent/{agent.Id}")).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await b.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(20))).Status.ShouldBe("killed");
        AgentHelpers.ProcessesOf(agent.Id).ShouldBeEmpty();
    }

    [Fact]
    public async Task WhenTheNodeFollowingAnAgentStops_AnotherTakesItOver_AndTheTeamLosesNothing()
    {
        var (a, b) = await StartNodesAsync(leaseSeconds: 2);
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        await using var miguelOnB = await ClusterTests.JoinedAsync(b, member.AccessToken);
        var agent = await a.SpawnAsync(owner.Auth.AccessToken, "outlive node A", "echo");
        await miguelOnB.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (seen, next) = await ReadUntilAsync(miguelOnB, agent.Id, "ready\n");

        await a.DisposeAsync(); // node A stops; its agent runs on, and its lease runs out

        // The owner, now on node B, goes on: node B has taken the agent over (within the lease and a quarter).
        using var sarah = b.Client(owner.Auth.AccessToken);
        await Eventually.UntilAsync(async () => (await sarah.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("after node A\n"))).StatusCode,
            status => status == HttpStatusCode.Accepted, "node B carries the owner's input out", TimeSpan.FromSeconds(15));
        var (more, _) = await ReadUntilAsync(miguelOnB, agent.Id, "echo: after node A", next);
        (await sarah.PostAsync($"/api/agent/{agent.Id}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var done = await b.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.Status.ShouldBe("completed", "node B saw it finish and recorded it");
        var log = LogOnA(agent.Id);
        seen.Concat(more).ToArray().ShouldBe(log[..(seen.Length + more.Length)]);
        Encoding.UTF8.GetString(log).Split("echo: after node A").Length.ShouldBe(2, "the input went in once");
        using var his = b.Client(member.AccessToken);
        (await his.OutputAsync(agent.Id)).ShouldBe(log);
    }

    [Fact]
    public async Task OutputWrittenWhileRedisIsDown_ReachesTheOtherNodesWatcher_ByPosition_OnceItIsBack()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        await using var miguelOnB = await ClusterTests.JoinedAsync(b, member.AccessToken);
        var agent = await a.SpawnAsync(owner.Auth.AccessToken, "echo across an outage", "echo");
        await miguelOnB.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (seen, next) = await ReadUntilAsync(miguelOnB, agent.Id, "ready\n");
        using var sarah = a.Client(owner.Auth.AccessToken);

        await redis.StopAsync();
        try
        {
            // Node A follows the agent and takes the owner's input; node B hears nothing of it meanwhile.
            (await sarah.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("while Redis is down\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await sarah.OutputAsync(agent.Id)), o => o.Contains("echo: while Redis is down", StringComparison.Ordinal),
                "node A has the answer");
        }
        finally
        {
            await redis.StartAsync();
        }
        await Eventually.UntilAsync(async () => (await (await b.Client().GetAsync("/health")).Content.ReadFromJsonAsync<HealthResponse>())!.Redis,
            state => state == "connected", "node B is back on Redis", TimeSpan.FromSeconds(30));
        await Eventually.UntilAsync(async () => (await (await a.Client().GetAsync("/health")).Content.ReadFromJsonAsync<HealthResponse>())!.Redis,
            state => state == "connected", "node A is back on Redis", TimeSpan.FromSeconds(30));
        (await sarah.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("after Redis is back\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);

        // Node B's feed sees a gap: its watcher reads the missed part from the log, then goes on live, contiguous.
        var (more, _) = await ReadUntilAsync(miguelOnB, agent.Id, "echo: after Redis is back", next);
        var text = Encoding.UTF8.GetString(more);
        text.ShouldContain("echo: while Redis is down");
        seen.Concat(more).ToArray().ShouldBe(LogOnA(agent.Id)[..(seen.Length + more.Length)]);
        (await sarah.PostAsync($"/api/agent/{agent.Id}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await b.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
    }

    [Fact]
    public async Task AnAgentThatEndsWhileRedisIsDown_EndsForTheOtherNodesWatcher_OnceItIsBack()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        await using var miguelOnB = await ClusterTests.JoinedAsync(b, member.AccessToken);
        var agent = await a.SpawnAsync(owner.Auth.AccessToken, "echo, then end in an outage", "echo");
        await miguelOnB.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (seen, next) = await ReadUntilAsync(miguelOnB, agent.Id, "ready\n");
        using var sarah = a.Client(owner.Auth.AccessToken);

        await redis.StopAsync();
        try
        {
            // Its last words and its end happen on node A while node B hears nothing.
            (await sarah.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("last words\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await sarah.OutputAsync(agent.Id)), o => o.Contains("echo: last words", StringComparison.Ordinal),
                "node A has the answer");
            (await sarah.PostAsync($"/api/agent/{agent.Id}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            (await a.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
        }
        finally
        {
            await redis.StartAsync();
        }
        // Node B learns the end from the database: its watcher gets the rest, contiguous, then the end.
        var (rest, end) = await ReadUntilAsync(miguelOnB, agent.Id, "echo: last words", next);
        var done = await miguelOnB.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output_end" && m.GetProperty("agentId").GetString() == agent.Id,
            TimeSpan.FromSeconds(30), "the end of the agent's output");
        done.GetProperty("status").GetString().ShouldBe("completed");
        var log = LogOnA(agent.Id);
        done.GetProperty("next").GetInt64().ShouldBe(log.Length);
        seen.Concat(rest).ToArray().ShouldBe(log[..(int)end]);
    }

    public void Dispose() => StartupTests.Delete(_dataA);
}
