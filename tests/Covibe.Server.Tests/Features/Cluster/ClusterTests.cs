using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Two <c>covibe serve</c> nodes on one PostgreSQL and one Redis (seed 001's Phase 2): members on different nodes see the
/// same team live; with Redis down each node keeps serving its own clients and says so, and the team is whole again once
/// Redis is back.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed class ClusterTests(PostgresServer postgres, RedisServer redis) : IClassFixture<PostgresServer>
{
    /// <summary>A hub connection to <paramref name="node"/>, joined to its team.</summary>
    internal static async Task<HubClient> JoinedAsync(TestServer node, string token)
    {
        var hub = await node.ConnectAsync(token);
        await hub.ReceiveAsync("team_joined");
        return hub;
    }

    private async Task<(TestServer A, TestServer B)> StartNodesAsync(Dictionary<string, string>? extra = null)
    {
        var database = await postgres.CreateDatabaseAsync();
        var settings = redis.ClusterSettings();
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }
        return (await TestServer.StartAsync(postgres: database, settings: settings), await TestServer.StartAsync(postgres: database, settings: settings));
    }

    private static async Task<HealthResponse> HealthAsync(TestServer node)
    {
        using var http = node.Client();
        return (await http.GetFromJsonAsync<HealthResponse>("/health"))!;
    }

    [Fact]
    public async Task MembersOnDifferentNodes_SeeTheSameChatAndAgents()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        await using var sarah = await JoinedAsync(a, owner.Auth.AccessToken);
        await using var miguel = await JoinedAsync(b, member.AccessToken);

        await sarah.SendAsync(new { type = "chat_message", message = "from node A", clientId = "c-1" });
        (await miguel.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("from node A");
        (await sarah.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("from node A"); // once, not again from Redis
        await miguel.SendAsync(new { type = "chat_message", message = "from node B", clientId = "c-2" });
        (await sarah.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("from node B");

        // An agent spawned through node A: its status reaches the teammate on node B, as a viewer (canControl false).
        using var client = a.Client(owner.Auth.AccessToken);
        using var spawned = await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("on node A", "mock"));
        var agent = (await spawned.Content.ReadFromJsonAsync<AgentDto>())!;
        var status = await miguel.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_status" && m.GetProperty("agentId").GetString() == agent.Id);
        status.GetProperty("agent").GetProperty("canControl").GetBoolean().ShouldBeFalse();
        var mine = await sarah.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_status" && m.GetProperty("agentId").GetString() == agent.Id);
        mine.GetProperty("agent").GetProperty("canControl").GetBoolean().ShouldBeTrue();
        (await HealthAsync(b)).Redis.ShouldBe("connected");
    }

    /// <summary>Waits for a team_presence in which <paramref name="userId"/> has <paramref name="status"/> (and, if given, that many connections).</summary>
    private static Task<System.Text.Json.JsonElement> PresenceAsync(HubClient hub, string userId, string status, int? connections = null) =>
        hub.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_presence" && m.GetProperty("users").EnumerateArray().Any(u =>
            u.GetProperty("userId").GetString() == userId && u.GetProperty("status").GetString() == status
            && (connections is null || u.GetProperty("connections").GetInt32() == connections)), TimeSpan.FromSeconds(20), $"{userId} {status}");

    [Fact]
    public async Task Presence_IsTheTeamsAcrossNodes_APersonWithTabsOnTwoNodesIsOnlineOnce()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        await using var sarah = await JoinedAsync(a, owner.Auth.AccessToken);
        var miguelId = member.User.Id;

        // Miguel opens the app on node B: Sarah, on node A, sees him come online.
        var miguelOnB = await JoinedAsync(b, member.AccessToken);
        await PresenceAsync(sarah, miguelId, "online", 1);
        // A second tab, on node A: one person, two connections (the new tab sees the team at once; the others hear
        // nothing, since no person's state changed).
        var miguelOnA = await JoinedAsync(a, member.AccessToken); // closed below, as a tab is
        await PresenceAsync(miguelOnA, miguelId, "online", 2);
        // The tab on B closes: he is still online (on A), on every node.
        await miguelOnB.DisposeAsync();
        using var onB = b.Client(owner.Auth.AccessToken);
        await Eventually.UntilAsync(async () => (await onB.GetFromJsonAsync<TeamResponse>("/api/team"))!.Members.Single(m => m.Id == miguelId).Status,
            status => status == "online", "node B, with no tab of his left, knows he is online on node A");
        await Should.ThrowAsync<TimeoutException>(() => sarah.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_presence"
            && m.GetProperty("users").EnumerateArray().Any(u => u.GetProperty("userId").GetString() == miguelId && u.GetProperty("status").GetString() != "online"),
            TimeSpan.FromSeconds(1)));
        // The last tab closes: offline, everywhere.
        await miguelOnA.DisposeAsync();
        await PresenceAsync(sarah, miguelId, "offline");
        // And over REST on node B, which holds no connection of Sarah's: she is online (on node A), Miguel offline.
        using var http = b.Client(owner.Auth.AccessToken);
        var team = (await http.GetFromJsonAsync<TeamResponse>("/api/team"))!;
        team.Members.Single(m => m.Id == owner.Auth.User.Id).Status.ShouldBe("online");
        team.Members.Single(m => m.Id == miguelId).Status.ShouldBe("offline");
    }

    [Fact]
    public async Task ALogoutOnOneNode_ClosesThatLoginsSocketsOnTheOther()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        await using var onB = await JoinedAsync(b, member.AccessToken);
        await using var ownerOnB = await JoinedAsync(b, owner.Auth.AccessToken);

        using var client = a.Client(member.AccessToken);
        (await client.PostAsync("/api/auth/logout", null)).StatusCode.ShouldBe(System.Net.HttpStatusCode.NoContent);
        (await onB.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("session_revoked");
        (await onB.Closed.WaitAsync(TimeSpan.FromSeconds(5))).Status.ShouldBe(System.Net.WebSockets.WebSocketCloseStatus.PolicyViolation);
        // Another login's socket on that node stays.
        await ownerOnB.SendAsync(new { type = "chat_message", message = "still here", clientId = "c-9" });
        (await ownerOnB.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("still here");
    }

    [Fact]
    public async Task RateLimits_HoldAcrossNodes_SignInsAndSpawnsSpreadOverTwoNodesCountOnce()
    {
        var (a, b) = await StartNodesAsync(new() { ["Covibe:Auth:AttemptsPerMinute"] = "4", ["Covibe:Agents:SpawnsPerMinute"] = "2" });
        await using var nodeA = a;
        await using var nodeB = b;
        var owner = await a.CreateTeamAsync(); // one sign-in attempt (team creation counts)
        using var onA = a.Client();
        using var onB = b.Client();
        var wrong = new LoginRequest(owner.Auth.User.Email, "not the password");
        (await onA.PostAsJsonAsync("/api/auth/login", wrong)).StatusCode.ShouldBe(System.Net.HttpStatusCode.Unauthorized);
        (await onB.PostAsJsonAsync("/api/auth/login", wrong)).StatusCode.ShouldBe(System.Net.HttpStatusCode.Unauthorized);
        (await onA.PostAsJsonAsync("/api/auth/login", wrong)).StatusCode.ShouldBe(System.Net.HttpStatusCode.Unauthorized);
        // The fifth attempt from this address in the minute, the second on node B: refused there too.
        var limited = await onB.PostAsJsonAsync("/api/auth/login", wrong);
        await limited.ShouldBeProblemAsync(System.Net.HttpStatusCode.TooManyRequests, "rate-limited");
        limited.Headers.RetryAfter.ShouldNotBeNull();

        using var spawnA = a.Client(owner.Auth.AccessToken);
        using var spawnB = b.Client(owner.Auth.AccessToken);
        (await spawnA.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("one", "mock"))).StatusCode.ShouldBe(System.Net.HttpStatusCode.Created);
        (await spawnB.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("two", "mock"))).StatusCode.ShouldBe(System.Net.HttpStatusCode.Created);
        await (await spawnA.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("three", "mock")))
            .ShouldBeProblemAsync((System.Net.HttpStatusCode)429, "too-many-agents");
    }

    [Fact]
    public async Task RedisDown_EachNodeServesItsOwnClientsAndSaysSo_AndTheTeamIsWholeAgainWhenItIsBack()
    {
        var (a, b) = await StartNodesAsync(new() { ["Covibe:Auth:AttemptsPerMinute"] = "4" });
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync();
        var mate = await a.JoinAsync(owner.Invite.InviteCode, "Chen");
        await using var sarah = await JoinedAsync(a, owner.Auth.AccessToken);
        await using var chen = await JoinedAsync(a, mate.AccessToken);
        await using var miguel = await JoinedAsync(b, member.AccessToken);

        await redis.StopAsync();
        try
        {
            var health = await Eventually.UntilAsync(() => HealthAsync(a), h => h.Redis == "down", "node A says Redis is down");
            health.Status.ShouldBe("degraded");
            await sarah.SendAsync(new { type = "chat_message", message = "while Redis is down", clientId = "c-1" });
            (await chen.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("while Redis is down"); // same node: still live
            // Sign-in attempts are still limited, by each node on its own meanwhile: not refused outright, not unlimited.
            using var onB = b.Client();
            var wrong = new LoginRequest(owner.Auth.User.Email, "not the password");
            for (var i = 0; i < 4; i++)
            {
                (await onB.PostAsJsonAsync("/api/auth/login", wrong)).StatusCode.ShouldBe(System.Net.HttpStatusCode.Unauthorized);
            }
            await (await onB.PostAsJsonAsync("/api/auth/login", wrong)).ShouldBeProblemAsync(System.Net.HttpStatusCode.TooManyRequests, "rate-limited");
        }
        finally
        {
            await redis.StartAsync();
        }
        await Eventually.UntilAsync(() => HealthAsync(b), h => h.Redis == "connected", "node B is back on Redis", TimeSpan.FromSeconds(30));
        await Eventually.UntilAsync(() => HealthAsync(a), h => h.Redis == "connected", "node A is back on Redis", TimeSpan.FromSeconds(30));
        // What Miguel missed is in the database: he catches up by position (REST ?after=), as after any reconnect.
        using var his = b.Client(member.AccessToken);
        (await his.GetStringAsync("/api/chat/history")).ShouldContain("while Redis is down");
        await Eventually.UntilAsync(async () =>
        {
            await sarah.SendAsync(new { type = "chat_message", message = "after Redis came back", clientId = Guid.NewGuid().ToString() });
            try
            {
                await miguel.ReceiveAsync(m => m.GetProperty("type").GetString() == "chat_message" && m.GetProperty("message").GetString() == "after Redis came back", TimeSpan.FromSeconds(1));
                return true;
            }
            catch (TimeoutException)
            {
                return false;
            }
        }, received => received, "events flow between the nodes again", TimeSpan.FromSeconds(30));
    }
}

/// <summary>Tests that stop and start the shared redis-server run one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class RedisGroup : ICollectionFixture<RedisServer>
{
    public const string Name = "redis";
}
