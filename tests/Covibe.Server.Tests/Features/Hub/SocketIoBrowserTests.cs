using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>socket.io-client in Chromium, loaded from the server as Socket.IO apps load it (<c>/socket.io/socket.io.js</c>).</summary>
public sealed class SocketIoBrowserTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task BrowserClient_UpgradesJoinsChatsAndWatchesAnAgent()
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings());
        var (sarah, miguel) = await server.CreateTeamWithMemberAsync();
        await using var miguelHub = await server.ConnectAsync(miguel.AccessToken);
        await miguelHub.ReceiveAsync("team_joined");
        var page = await browser.NewPageAsync(server);
        var client = await SocketIoClient.BrowserAsync(page, server.Url, new { auth = new { token = sarah.Auth.AccessToken }, reconnection = false });
        await client.NextAsync("connect");
        (await client.EventAsync("team_joined")).GetProperty("userName").GetString().ShouldBe("Sarah");
        (await client.NextAsync("upgrade", TimeSpan.FromSeconds(15))).GetProperty("transport").GetString().ShouldBe("websocket");

        await client.SendAsync("chat_message", new { message = "from the browser" });
        (await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "chat_message")).GetProperty("message").GetString().ShouldBe("from the browser");
        await miguelHub.SendAsync(new { type = "chat_message", message = "seen it" });
        (await client.EventAsync("chat_message", m => m.GetProperty("userName").GetString() == "Miguel")).GetProperty("message").GetString().ShouldBe("seen it");

        var agent = await server.SpawnAsync(miguel.AccessToken, "mock work");
        var first = await client.EventAsync("agent_output", o => o.GetProperty("agentId").GetString() == agent.Id, TimeSpan.FromSeconds(30));
        first.GetProperty("canControl").GetBoolean().ShouldBeFalse("Miguel's agent");
        var output = await SocketIoTests.CollectAsync(client, agent.Id, first);
        output.ShouldBe(AgentHelpers.LogOf(server, agent.Id));
        (await client.EmitAsync("agent_control", new { agentId = agent.Id, command = "kill" })).GetProperty("code").GetString().ShouldBeOneOf("forbidden", "agent_not_running");

        // Her own agent, spawned from the page: she controls it.
        var spawned = await client.EmitAsync("agent_spawn", new { task = "echo", agentType = "echo" });
        var own = spawned.GetProperty("agent").GetProperty("id").GetString()!;
        var start = await client.EventAsync("agent_output", o => o.GetProperty("agentId").GetString() == own, TimeSpan.FromSeconds(30));
        start.GetProperty("canControl").GetBoolean().ShouldBeTrue();
        await client.SendAsync("agent_control", new { agentId = own, command = "input", data = "from the page\n" });
        await client.EmitAsync("agent_control", new { agentId = own, command = "end" });
        var echoed = await SocketIoTests.CollectAsync(client, own, start);
        System.Text.Encoding.UTF8.GetString(echoed).ShouldContain("echo: from the page");
        await client.EmitAsync("presence_update", new { status = "away" });
        await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_presence"
            && m.GetProperty("users").EnumerateArray().Any(u => u.GetProperty("name").GetString() == "Sarah" && u.GetProperty("status").GetString() == "away"));
    }
}
