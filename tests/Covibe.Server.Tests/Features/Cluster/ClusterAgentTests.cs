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

    /// <summary>Two nodes; the owner's echo agent, followed by node A; a teammate on node B watching it from its first byte, up to "ready".</summary>
    private async Task<Watched> WatchedFromNodeBAsync(string task)
    {
        var (a, b) = await StartNodesAsync();
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        var miguelOnB = await ClusterTests.JoinedAsync(b, member.AccessToken);
        var agent = await a.SpawnAsync(owner.Auth.AccessToken, task, "echo");
        await miguelOnB.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (seen, next) = await ReadUntilAsync(miguelOnB, agent.Id, "ready\n");
        return new Watched(a, b, owner.Auth.AccessToken, a.Client(owner.Auth.AccessToken), miguelOnB, agent.Id, seen, next);
    }

    private sealed record Watched(TestServer A, TestServer B, string OwnerToken, HttpClient Sarah, HubClient MiguelOnB, string AgentId, byte[] Seen, long Next)
        : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Sarah.Dispose();
            await MiguelOnB.DisposeAsync();
            await A.DisposeAsync();
            await B.DisposeAsync();
        }
    }

    /// <summary>Redis stopped while <paramref name="meanwhile"/> runs, then started again; done when both nodes are back on it.</summary>
    private async Task WhileRedisIsDownAsync(Watched w, Func<Task> meanwhile)
    {
        await redis.StopAsync();
        try
        {
            await meanwhile();
        }
        finally
        {
            await redis.StartAsync();
        }
        foreach (var node in new[] { w.A, w.B })
        {
            using var http = node.Client();
            await Eventually.UntilAsync(async () => (await http.GetFromJsonAsync<HealthResponse>("/health"))!.Redis,
                state => state == "connected", "the node is back on Redis", TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task OutputWrittenWhileRedisIsDown_ReachesTheOtherNodesWatcher_ByPosition_OnceItIsBack()
    {
        await using var w = await WatchedFromNodeBAsync("echo across an outage");
        await WhileRedisIsDownAsync(w, async () =>
        {
            // Node A follows the agent and takes the owner's input; node B hears nothing of it meanwhile.
            (await w.Sarah.PostAsJsonAsync($"/api/agent/{w.AgentId}/input", new AgentInputRequest("while Redis is down\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await w.Sarah.OutputAsync(w.AgentId)), o => o.Contains("echo: while Redis is down", StringComparison.Ordinal),
                "node A has the answer");
        });
        (await w.Sarah.PostAsJsonAsync($"/api/agent/{w.AgentId}/input", new AgentInputRequest("after Redis is back\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);

        // Node B's feed sees a gap: its watcher reads the missed part from the log, then goes on live, contiguous.
        var (more, _) = await ReadUntilAsync(w.MiguelOnB, w.AgentId, "echo: after Redis is back", w.Next);
        Encoding.UTF8.GetString(more).ShouldContain("echo: while Redis is down");
        w.Seen.Concat(more).ToArray().ShouldBe(LogOnA(w.AgentId)[..(w.Seen.Length + more.Length)]);
        (await w.Sarah.PostAsync($"/api/agent/{w.AgentId}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await w.B.WaitFinishedAsync(w.OwnerToken, w.AgentId)).Status.ShouldBe("completed");
    }

    [Fact]
    public async Task AnAgentThatEndsWhileRedisIsDown_EndsForTheOtherNodesWatcher_OnceItIsBack()
    {
        await using var w = await WatchedFromNodeBAsync("echo, then end in an outage");
        await WhileRedisIsDownAsync(w, async () =>
        {
            // Its last words and its end happen on node A while node B hears nothing.
            (await w.Sarah.PostAsJsonAsync($"/api/agent/{w.AgentId}/input", new AgentInputRequest("last words\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await w.Sarah.OutputAsync(w.AgentId)), o => o.Contains("echo: last words", StringComparison.Ordinal),
                "node A has the answer");
            (await w.Sarah.PostAsync($"/api/agent/{w.AgentId}/end", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            (await w.A.WaitFinishedAsync(w.OwnerToken, w.AgentId)).Status.ShouldBe("completed");
        });
        // Node B learns the end from the database: its watcher gets the rest, contiguous, then the end.
        var (rest, end) = await ReadUntilAsync(w.MiguelOnB, w.AgentId, "echo: last words", w.Next);
        var done = await w.MiguelOnB.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_output_end" && m.GetProperty("agentId").GetString() == w.AgentId,
            TimeSpan.FromSeconds(30), "the end of the agent's output");
        done.GetProperty("status").GetString().ShouldBe("completed");
        var log = LogOnA(w.AgentId);
        done.GetProperty("next").GetInt64().ShouldBe(log.Length);
        w.Seen.Concat(rest).ToArray().ShouldBe(log[..(int)end]);
    }

    public void Dispose() => StartupTests.Delete(_dataA);
}
