using System.Text;
using System.Text.Json;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Seed 001's clients on the hub's Socket.IO endpoint, unmodified: npm's socket.io-client 4.8.4 in Node and in Chromium,
/// and python-socketio, over long polling, a WebSocket, and polling upgraded to a WebSocket. Their events are the plain
/// hub's (a teammate on <c>/ws</c> hears them, and they hear the teammate).
/// </summary>
public sealed class SocketIoTests
{
    public static TheoryData<string> Transports => new() { "default", "websocket", "polling" };

    private static object Options(string transports, object? auth = null) => transports switch
    {
        "websocket" => new { transports = new[] { "websocket" }, reconnection = false, auth },
        "polling" => new { transports = new[] { "polling" }, reconnection = false, auth },
        _ => new { reconnection = false, auth },
    };

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task NodeClient_JoinsChatsSpawnsWatchesAndControls_AsSeed001Says(string transports)
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings());
        var (sarah, miguel) = await server.CreateTeamWithMemberAsync();
        await using var miguelHub = await server.ConnectAsync(miguel.AccessToken);
        await miguelHub.ReceiveAsync("team_joined");
        await using var client = await SocketIoClient.NodeAsync(server.Url, Options(transports));
        var connected = await client.NextAsync("connect");
        if (transports != "default")
        {
            // By default it starts on polling and upgrades (checked at the end), often before it has connected to the namespace.
            connected.GetProperty("transport").GetString().ShouldBe(transports);
        }

        // join_team with the token in its payload; the acknowledgement is team_joined.
        var joined = await client.EmitAsync("join_team", new { teamId = sarah.Auth.Team.Id, token = sarah.Auth.AccessToken });
        joined.GetProperty("type").GetString().ShouldBe("team_joined");
        joined.GetProperty("userName").GetString().ShouldBe("Sarah");
        var presence = await client.EventAsync("team_presence", p => p.GetProperty("users").EnumerateArray().Any(u => u.GetProperty("name").GetString() == "Sarah" && u.GetProperty("status").GetString() == "online"));
        presence.GetProperty("users").EnumerateArray().Single(u => u.GetProperty("name").GetString() == "Miguel").GetProperty("status").GetString().ShouldBe("online");

        // Chat both ways between Socket.IO and the plain hub.
        await client.SendAsync("chat_message", new { message = "hello from socket.io" });
        (await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "chat_message")).GetProperty("message").GetString().ShouldBe("hello from socket.io");
        await miguelHub.SendAsync(new { type = "chat_message", message = "hi Sarah" });
        var heard = await client.EventAsync("chat_message", m => m.GetProperty("userName").GetString() == "Miguel");
        heard.GetProperty("message").GetString().ShouldBe("hi Sarah");
        (await client.EmitAsync("chat_message", new { message = "with an ack" })).GetProperty("type").GetString().ShouldBe("ok");
        await client.EmitAsync("presence_update", new { status = "away" });
        await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_presence"
            && m.GetProperty("users").EnumerateArray().Any(u => u.GetProperty("name").GetString() == "Sarah" && u.GetProperty("status").GetString() == "away"));

        // Spawn, watch live (every team agent, seed 001), control: input, then end its input.
        var spawned = await client.EmitAsync("agent_spawn", new { task = "echo things", agentType = "echo" });
        spawned.GetProperty("type").GetString().ShouldBe("agent_spawned");
        var agentId = spawned.GetProperty("agent").GetProperty("id").GetString()!;
        var first = await client.EventAsync("agent_output", o => o.GetProperty("agentId").GetString() == agentId, TimeSpan.FromSeconds(30));
        first.GetProperty("owner").GetString().ShouldBe(sarah.Auth.User.Id);
        first.GetProperty("canControl").GetBoolean().ShouldBeTrue();
        first.GetProperty("position").GetInt64().ShouldBe(0);
        await client.SendAsync("agent_control", new { agentId, command = "input", data = "hello agent\n" });
        (await client.EmitAsync("agent_control", new { agentId, command = "end" })).GetProperty("type").GetString().ShouldBe("ok");
        await client.EventAsync("agent_status", s => s.GetProperty("agentId").GetString() == agentId && s.GetProperty("status").GetString() == "completed", TimeSpan.FromSeconds(30));

        // Everything it printed arrived in order, nothing twice: the same bytes as its log.
        var output = await CollectAsync(client, agentId, first);
        Encoding.UTF8.GetString(output).ShouldContain("echo: hello agent");
        output.ShouldBe(AgentHelpers.LogOf(server, agentId));

        // A refused request is acknowledged with its error.
        var refused = await client.EmitAsync("agent_control", new { agentId = "nope", command = "kill" });
        refused.GetProperty("type").GetString().ShouldBe("error");
        refused.GetProperty("code").GetString().ShouldBe("not_found");
        refused.GetProperty("requestType").GetString().ShouldBe("agent_control");

        if (transports == "default")
        {
            (await client.NextAsync("upgrade")).GetProperty("transport").GetString().ShouldBe("websocket");
        }
        await client.DisconnectAsync();
        await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_presence"
            && m.GetProperty("users").EnumerateArray().Any(u => u.GetProperty("name").GetString() == "Sarah" && u.GetProperty("status").GetString() == "offline"));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task TokenInTheHandshakesAuth_JoinsAtConnect_AndABadOneIsAConnectError(string transports)
    {
        await using var server = await TestServer.StartAsync();
        var sarah = await server.CreateTeamAsync();
        await using var client = await SocketIoClient.NodeAsync(server.Url, Options(transports, new { token = sarah.Auth.AccessToken }));
        await client.NextAsync("connect");
        (await client.EventAsync("team_joined")).GetProperty("userName").GetString().ShouldBe("Sarah");
        await client.EventAsync("team_presence");

        await using var stranger = await SocketIoClient.NodeAsync(server.Url, Options(transports, new { token = "not-a-token" }));
        var refused = await stranger.NextAsync("connect_error");
        refused.GetProperty("message").GetString()!.ShouldContain("not valid");
        refused.GetProperty("data").GetProperty("code").GetString().ShouldBe("auth_failed");
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task PythonClient_JoinsChatsSeesPresenceSpawnsWatchesAndControls(string transports)
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings());
        var (sarah, miguel) = await server.CreateTeamWithMemberAsync();
        await using var miguelHub = await server.ConnectAsync(miguel.AccessToken);
        await miguelHub.ReceiveAsync("team_joined");
        await using var client = await SocketIoClient.PythonAsync(server.Url, transports == "default"
            ? new { reconnection = false }
            : new { reconnection = false, transports = new[] { transports } });
        var connected = await client.NextAsync("connect");
        if (transports != "default")
        {
            connected.GetProperty("transport").GetString().ShouldBe(transports);
        }
        (await client.EmitAsync("join_team", new { teamId = sarah.Auth.Team.Id, token = sarah.Auth.AccessToken })).GetProperty("userName").GetString().ShouldBe("Sarah");
        await client.EventAsync("team_presence", p => p.GetProperty("users").EnumerateArray().All(u => u.GetProperty("status").GetString() == "online"));
        await client.SendAsync("chat_message", new { message = "from python" });
        (await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "chat_message")).GetProperty("message").GetString().ShouldBe("from python");

        var spawned = await client.EmitAsync("agent_spawn", new { task = "echo", agentType = "echo" });
        var agentId = spawned.GetProperty("agent").GetProperty("id").GetString()!;
        var first = await client.EventAsync("agent_output", o => o.GetProperty("agentId").GetString() == agentId, TimeSpan.FromSeconds(30));
        first.GetProperty("canControl").GetBoolean().ShouldBeTrue();
        await client.SendAsync("agent_control", new { agentId, command = "input", data = "from python\n" });
        await client.EmitAsync("agent_control", new { agentId, command = "end" });
        var output = await CollectAsync(client, agentId, first);
        Encoding.UTF8.GetString(output).ShouldContain("echo: from python");
        output.ShouldBe(AgentHelpers.LogOf(server, agentId));
    }

    /// <summary>An agent's output from <paramref name="first"/> to its end, each event starting where the last one ended.</summary>
    internal static async Task<byte[]> CollectAsync(SocketIoClient client, string agentId, JsonElement first, TimeSpan? timeout = null)
    {
        var all = new MemoryStream();
        var expected = first.GetProperty("position").GetInt64();
        var next = first;
        while (true)
        {
            next.GetProperty("position").GetInt64().ShouldBe(expected, "no gap, no overlap");
            var data = AgentHelpers.Decode(next);
            all.Write(data);
            expected += data.Length;
            var line = await client.NextAsync(l => l.GetProperty("kind").GetString() == "event"
                && l.GetProperty("event").GetString() is "agent_output" or "agent_output_end"
                && l.GetProperty("data").GetProperty("agentId").GetString() == agentId, $"output of {agentId}", timeout ?? TimeSpan.FromSeconds(60));
            if (line.GetProperty("event").GetString() == "agent_output_end")
            {
                line.GetProperty("data").GetProperty("next").GetInt64().ShouldBe(expected);
                return all.ToArray();
            }
            next = line.GetProperty("data");
        }
    }
}
