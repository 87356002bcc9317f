using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Socket.IO clients on several nodes (PostgreSQL, Redis): one on node B sees what happens on node A as a <c>/ws</c> client
/// does, and long polling works behind nginx with the sticky sessions docs/scaling.md describes.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed class SocketIoClusterTests(PostgresServer postgres, RedisServer redis) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task AClientOnNodeB_SeesChatPresenceAndAgentsOfNodeA_AndLongPollingWorksBehindStickyNginx()
    {
        var database = await postgres.CreateDatabaseAsync();
        var settings = redis.ClusterSettings();
        foreach (var (key, value) in AgentHelpers.Settings())
        {
            settings[key] = value;
        }
        await using var a = await TestServer.StartAsync(postgres: database, settings: settings);
        await using var b = await TestServer.StartAsync(postgres: database, settings: settings);
        var (sarah, miguel) = await a.CreateTeamWithMemberAsync();
        await using var miguelOnA = await ClusterTests.JoinedAsync(a, miguel.AccessToken);

        // Sarah on node B, long polling only.
        await using var sarahOnB = await SocketIoClient.NodeAsync(b.Url, new { transports = new[] { "polling" }, reconnection = false, auth = new { token = sarah.Auth.AccessToken } });
        await sarahOnB.EventAsync("team_joined");
        await miguelOnA.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_presence"
            && m.GetProperty("users").EnumerateArray().Any(u => u.GetProperty("name").GetString() == "Sarah" && u.GetProperty("status").GetString() == "online"));
        await miguelOnA.SendAsync(new { type = "chat_message", message = "from node A" });
        (await sarahOnB.EventAsync("chat_message")).GetProperty("message").GetString().ShouldBe("from node A");
        await sarahOnB.SendAsync("chat_message", new { message = "from node B" });
        await miguelOnA.ReceiveAsync(m => m.GetProperty("type").GetString() == "chat_message" && m.GetProperty("message").GetString() == "from node B");

        // Miguel's agent, started through node A: Sarah on B watches it live, as a viewer, byte for byte.
        var agent = await a.SpawnAsync(miguel.AccessToken, "on node A", "count");
        var first = await sarahOnB.EventAsync("agent_output", o => o.GetProperty("agentId").GetString() == agent.Id, TimeSpan.FromSeconds(30));
        first.GetProperty("canControl").GetBoolean().ShouldBeFalse();
        var output = await SocketIoTests.CollectAsync(sarahOnB, agent.Id, first);
        output.ShouldBe(AgentHelpers.LogOf(a, agent.Id));

        // Behind nginx with hash $remote_addr: every poll of a session reaches the node that made it.
        await using var nginx = await NginxServer.StartAsync([a.Url, b.Url], sticky: true);
        await using var miguelPolling = await SocketIoClient.NodeAsync(nginx.Url, new { transports = new[] { "polling" }, reconnection = false, auth = new { token = miguel.AccessToken } });
        await miguelPolling.EventAsync("team_joined");
        for (var i = 0; i < 5; i++)
        {
            (await miguelPolling.EmitAsync("chat_message", new { message = $"through nginx {i}" })).GetProperty("type").GetString().ShouldBe("ok");
            await sarahOnB.EventAsync("chat_message", m => m.GetProperty("message").GetString() == $"through nginx {i}");
            await miguelPolling.EventAsync("chat_message", m => m.GetProperty("message").GetString() == $"through nginx {i}");
        }
        nginx.ErrorLog.ShouldNotContain("upstream");
    }
}
