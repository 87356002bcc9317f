using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>The <c>/ws</c> protocol of docs/protocol.md, message by message. Runs on SQLite and PostgreSQL.</summary>
public abstract class HubTests
{
    protected abstract Task<TestServer> ServerAsync();

    [Fact]
    public async Task JoinTeam_TokenInFirstMessage_JoinsAndReceivesPresence()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        await using var hub = await server.ConnectAsync();

        var joined = await hub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        joined.GetProperty("teamId").GetString().ShouldBe(owner.Auth.Team.Id);
        joined.GetProperty("userId").GetString().ShouldBe(owner.Auth.User.Id);
        var presence = await hub.ReceiveAsync("team_presence");
        var me = presence.GetProperty("users").EnumerateArray().Single();
        me.GetProperty("userId").GetString().ShouldBe(owner.Auth.User.Id);
        me.GetProperty("status").GetString().ShouldBe("online");
    }

    [Fact]
    public async Task Connect_WithAuthorizationHeader_IsJoinedWithoutAMessage()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        await using var hub = await server.ConnectAsync(owner.Auth.AccessToken);
        (await hub.ReceiveAsync("team_joined")).GetProperty("teamId").GetString().ShouldBe(owner.Auth.Team.Id);
    }

    [Fact]
    public async Task ChatMessage_FromOneMember_ReachesTeammatesLive_IsStored_AndNeverReachesAnotherTeam()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        var outsider = await server.CreateTeamAsync("Other");
        await using var sarah = await server.ConnectAsync();
        await sarah.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        await using var miguel = await server.ConnectAsync();
        await miguel.JoinAsync(owner.Auth.Team.Id, member.AccessToken);
        await using var stranger = await server.ConnectAsync();
        await stranger.JoinAsync(outsider.Auth.Team.Id, outsider.Auth.AccessToken);

        await sarah.SendAsync(new { type = "chat_message", message = "Deploying auth now", clientId = "c-1" });

        var received = await miguel.ReceiveAsync("chat_message");
        received.GetProperty("userId").GetString().ShouldBe(owner.Auth.User.Id);
        received.GetProperty("userName").GetString().ShouldBe("Sarah");
        received.GetProperty("message").GetString().ShouldBe("Deploying auth now");
        received.GetProperty("timestamp").GetDateTime().ShouldBeInRange(TimeProvider.System.GetUtcNow().UtcDateTime.AddMinutes(-1), TimeProvider.System.GetUtcNow().UtcDateTime.AddMinutes(1));
        var echo = await sarah.ReceiveAsync("chat_message");
        echo.GetProperty("clientId").GetString().ShouldBe("c-1");
        await miguel.SendAsync(new { type = "presence_update", status = "away" });
        await sarah.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_presence"
            && m.GetProperty("users").EnumerateArray().Any(u => u.GetProperty("status").GetString() == "away"));
        // The stranger saw its own team's presence on joining, and nothing of this team since.
        var strangersView = await stranger.ReceiveAsync("team_presence");
        strangersView.GetProperty("users").EnumerateArray().Select(u => u.GetProperty("userId").GetString()).ShouldBe([outsider.Auth.User.Id]);
        await stranger.ExpectNoneAsync("chat_message", TimeSpan.FromMilliseconds(300));
        await stranger.ExpectNoneAsync("team_presence", TimeSpan.FromMilliseconds(300));

        using var client = server.Client(member.AccessToken);
        var history = (await client.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history"))!;
        history.Messages.Single().Id.ShouldBe(received.GetProperty("id").GetInt64());
    }

    [Fact]
    public async Task ChatOverRest_IsBroadcastOnTheHub()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        await using var miguel = await server.ConnectAsync(member.AccessToken);
        await miguel.ReceiveAsync("team_joined");
        using var client = server.Client(owner.Auth.AccessToken);
        (await client.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest("from the CLI"))).StatusCode.ShouldBe(HttpStatusCode.Created);
        (await miguel.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("from the CLI");
    }

    [Fact]
    public async Task Presence_SeveralTabsAndAway_AggregatesPerPerson()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        await using var sarah = await server.ConnectAsync(owner.Auth.AccessToken);
        await sarah.ReceiveAsync("team_joined");
        // Her own copy of the team's presence first: later ones are the team's broadcasts.
        await sarah.ReceiveAsync("team_presence");
        var miguelId = member.User.Id;

        Task<JsonElement> MiguelIs(string status, int connections) => sarah.ReceiveAsync(m =>
            m.GetProperty("type").GetString() == "team_presence"
            && m.GetProperty("users").EnumerateArray().Any(u => u.GetProperty("userId").GetString() == miguelId
                && u.GetProperty("status").GetString() == status && u.GetProperty("connections").GetInt32() == connections),
            what: $"Miguel {status} on {connections} connection(s)");

        var phone = await server.ConnectAsync(member.AccessToken);
        await MiguelIs("online", 1);
        // A second device: the person's state is unchanged, so the team hears nothing; the new
        // connection itself is told the team's presence at once.
        var laptop = await server.ConnectAsync(member.AccessToken);
        await laptop.ReceiveAsync("team_joined");
        (await laptop.ReceiveAsync("team_presence")).GetProperty("users").EnumerateArray()
            .Single(u => u.GetProperty("userId").GetString() == miguelId).GetProperty("connections").GetInt32().ShouldBe(2);
        await phone.SendAsync(new { type = "presence_update", status = "away" });
        await sarah.ExpectNoneAsync("team_presence", TimeSpan.FromMilliseconds(600)); // still online on the laptop
        await laptop.SendAsync(new { type = "presence_update", status = "away" });
        await MiguelIs("away", 2);
        await laptop.SendAsync(new { type = "presence_update", status = "online" });
        await MiguelIs("online", 2);

        await laptop.DisposeAsync();
        await MiguelIs("away", 1);
        await phone.DisposeAsync();
        var offline = await MiguelIs("offline", 0);
        offline.GetProperty("users").EnumerateArray().Single(u => u.GetProperty("userId").GetString() == miguelId)
            .GetProperty("lastSeen").GetDateTime().ShouldBeInRange(TimeProvider.System.GetUtcNow().UtcDateTime.AddMinutes(-1), TimeProvider.System.GetUtcNow().UtcDateTime.AddMinutes(1));
    }

    [Theory]
    [InlineData("{not json", "bad_json")]
    [InlineData("[1,2]", "invalid_message")]
    [InlineData("{\"message\":\"no type\"}", "invalid_message")]
    [InlineData("{\"type\":\"launch_rockets\"}", "unknown_type")]
    [InlineData("{\"type\":\"chat_message\",\"message\":42}", "invalid_message")]
    [InlineData("{\"type\":\"chat_message\",\"message\":\"   \"}", "invalid_message")]
    [InlineData("{\"type\":\"presence_update\",\"status\":\"offline\"}", "invalid_message")]
    [InlineData("{\"type\":\"join_team\",\"teamId\":\"someone-elses\"}", "forbidden")]
    public async Task BadMessage_GetsAnErrorAndTheConnectionStaysUsable(string text, string code)
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        await using var hub = await server.ConnectAsync(owner.Auth.AccessToken);
        await hub.ReceiveAsync("team_joined");

        await hub.SendTextAsync(text);
        var error = await hub.ReceiveAsync("error");
        error.GetProperty("code").GetString().ShouldBe(code);
        error.GetProperty("error").GetString().ShouldNotBeNullOrWhiteSpace();
        error.GetProperty("fatal").GetBoolean().ShouldBeFalse();

        await hub.SendAsync(new { type = "chat_message", message = "still here" });
        (await hub.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("still here");
    }

    [Fact]
    public async Task OversizedAndBinaryMessages_AreRefusedAndTheConnectionStaysUsable()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        await using var hub = await server.ConnectAsync(owner.Auth.AccessToken);
        await hub.ReceiveAsync("team_joined");

        await hub.SendAsync(new { type = "chat_message", message = new string('x', 200_000) });
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("message_too_large");
        await hub.Socket.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("binary_not_supported");

        await hub.SendAsync(new { type = "chat_message", message = "after" });
        (await hub.ReceiveAsync("chat_message")).GetProperty("message").GetString().ShouldBe("after");
        using var client = server.Client(owner.Auth.AccessToken);
        (await client.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history"))!.Messages.Select(m => m.Message).ShouldBe(["after"]);
    }

    [Fact]
    public async Task BeforeJoining_OnlyJoinTeamIsAccepted()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        await using var hub = await server.ConnectAsync();
        await hub.SendAsync(new { type = "chat_message", message = "sneaky" });
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("not_joined");
        await hub.SendAsync(new { type = "presence_update", status = "away" });
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("not_joined");

        await hub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        using var client = server.Client(owner.Auth.AccessToken);
        (await client.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history"))!.Messages.ShouldBeEmpty();
    }

    [Fact]
    public async Task JoinTeam_BadTokenThenGoodToken_FailsThenJoins()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        await using var hub = await server.ConnectAsync();
        await hub.SendAsync(new { type = "join_team", teamId = owner.Auth.Team.Id, token = "forged.token.here" });
        var error = await hub.ReceiveAsync("error");
        error.GetProperty("code").GetString().ShouldBe("auth_failed");
        error.GetProperty("requestType").GetString().ShouldBe("join_team");
        await hub.SendAsync(new { type = "join_team", teamId = owner.Auth.Team.Id });
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("invalid_message");

        await hub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
    }

    [Fact]
    public async Task JoinTeam_AnotherTeamsId_IsForbidden()
    {
        var server = await ServerAsync();
        var mine = await server.CreateTeamAsync("Mine");
        var theirs = await server.CreateTeamAsync("Theirs");
        await using var hub = await server.ConnectAsync();
        await hub.SendAsync(new { type = "join_team", teamId = theirs.Auth.Team.Id, token = mine.Auth.AccessToken });
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("forbidden");
        await hub.SendAsync(new { type = "chat_message", message = "x" });
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("not_joined");
    }

    [Fact]
    public async Task Logout_ClosesThatLoginsSocketsWithinSeconds()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        await using var hub = await server.ConnectAsync();
        await hub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);

        using var client = server.Client(owner.Auth.AccessToken);
        (await client.PostAsync("/api/auth/logout", null)).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        var error = await hub.ReceiveAsync("error");
        error.GetProperty("code").GetString().ShouldBe("session_revoked");
        error.GetProperty("fatal").GetBoolean().ShouldBeTrue();
        var closed = await hub.Closed.WaitAsync(TimeSpan.FromSeconds(5));
        closed.Status.ShouldBe(WebSocketCloseStatus.PolicyViolation);

        await using var again = await server.ConnectAsync();
        await again.SendAsync(new { type = "join_team", teamId = owner.Auth.Team.Id, token = owner.Auth.AccessToken });
        (await again.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("auth_failed");
    }

    [Fact]
    public async Task RemovedMember_SocketClosesAndTeammatesSeeThemGone()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        await using var sarah = await server.ConnectAsync(owner.Auth.AccessToken);
        await sarah.ReceiveAsync("team_joined");
        await using var miguel = await server.ConnectAsync(member.AccessToken);
        await miguel.ReceiveAsync("team_joined");

        using var client = server.Client(owner.Auth.AccessToken);
        (await client.DeleteAsync($"/api/team/members/{member.User.Id}")).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        (await miguel.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("session_revoked");
        await miguel.Closed.WaitAsync(TimeSpan.FromSeconds(5));
        await sarah.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_presence"
            && m.GetProperty("users").EnumerateArray().All(u => u.GetProperty("userId").GetString() != member.User.Id));
        await sarah.SendAsync(new { type = "chat_message", message = "bye Miguel" });
        await miguel.ExpectNoneAsync("chat_message", TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task Upgrade_WithInvalidHeaderToken_IsRefusedBeforeUpgrading()
    {
        var server = await ServerAsync();
        var status = await TryConnectAsync(server, bearer: "not-a-token");
        status.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Ws_PlainHttpRequest_ReturnsProblemSayingToUseWebSocket()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        await (await client.GetAsync("/ws")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "websocket-required");
    }

    [Fact]
    public async Task Upgrade_FromForeignBrowserOrigin_IsRefused_SameOriginIsAccepted()
    {
        var server = await ServerAsync();
        (await TryConnectAsync(server, origin: "https://evil.example")).ShouldBe(HttpStatusCode.Forbidden);
        (await TryConnectAsync(server, origin: $"http://{server.Url.Authority}")).ShouldBe(HttpStatusCode.SwitchingProtocols);
    }

    internal static async Task<HttpStatusCode> TryConnectAsync(TestServer server, string? bearer = null, string? origin = null)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        if (bearer is not null)
        {
            socket.Options.SetRequestHeader("Authorization", $"Bearer {bearer}");
        }
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin);
        }
        try
        {
            await socket.ConnectAsync(new Uri($"ws://{server.Url.Authority}/ws"), CancellationToken.None);
            return socket.HttpStatusCode;
        }
        catch (WebSocketException)
        {
            return socket.HttpStatusCode;
        }
    }
}

public sealed class SqliteHubTests(SqliteServerFixture fixture) : HubTests, IClassFixture<SqliteServerFixture>
{
    protected override Task<TestServer> ServerAsync() => Task.FromResult(fixture.Server);
}

[Collection(PostgresGroup.Name)]
public sealed class PostgresHubTests(PostgresServer postgres) : HubTests
{
    protected override Task<TestServer> ServerAsync() => postgres.SharedServerAsync();
}
