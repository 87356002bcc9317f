using System.Net;
using System.Text;
using System.Text.Json;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// What the plain hub's tests try, through Socket.IO: no token, another team's, a forged team id, malformed and oversized
/// packets, a flood, a revoked login, and a session id guessed, reused after its end, or used from another address.
/// </summary>
public sealed class SocketIoSecurityTests
{
    private static readonly Dictionary<string, string> Settings = new()
    {
        ["Covibe:Hub:MessagesPerSecond"] = "20",
        ["Covibe:TrustedProxies"] = "127.0.0.1",
    };

    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    public async Task Attacker_CannotJoinAnotherTeam_OrDoAnythingBeforeJoining(string transport)
    {
        await using var server = await TestServer.StartAsync(settings: Settings);
        var (victim, victimMate) = await server.CreateTeamWithMemberAsync("Victims");
        var attacker = await server.CreateTeamAsync("Attackers", "Mallory");
        await using var client = await SocketIoClient.NodeAsync(server.Url, new { transports = new[] { transport }, reconnection = false });
        await client.NextAsync("connect");

        (await client.EmitAsync("chat_message", new { message = "before joining" })).GetProperty("code").GetString().ShouldBe("not_joined");
        (await client.EmitAsync("join_team", new { teamId = victim.Auth.Team.Id })).GetProperty("code").GetString().ShouldBe("invalid_message");
        // Her own token with the victims' team id; a teammate's token is what she does not have.
        var forged = await client.EmitAsync("join_team", new { teamId = victim.Auth.Team.Id, token = attacker.Auth.AccessToken });
        forged.GetProperty("code").GetString().ShouldBe("forbidden");
        (await client.EmitAsync("join_team", new { token = "eyJhbGciOiJIUzI1NiJ9.e30.forged" })).GetProperty("code").GetString().ShouldBe("auth_failed");
        (await client.EmitAsync("agent_spawn", new { task = "x", agentType = "mock" })).GetProperty("code").GetString().ShouldBe("not_joined");

        // The victims talk: nothing reaches her.
        await using var victimHub = await server.ConnectAsync(victimMate.AccessToken);
        await victimHub.ReceiveAsync("team_joined");
        await victimHub.SendAsync(new { type = "chat_message", message = "secret plans" });
        await victimHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "chat_message");
        (await client.EmitAsync("chat_message", new { message = "still here?" })).GetProperty("code").GetString().ShouldBe("not_joined");
        await Should.ThrowAsync<TimeoutException>(() => client.EventAsync("chat_message", timeout: TimeSpan.FromMilliseconds(300)));
    }

    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    public async Task BadPackets_GetAClearError_AndTheConnectionGoesOn(string transport)
    {
        await using var server = await TestServer.StartAsync(settings: Settings);
        var sarah = await server.CreateTeamAsync();
        await using var client = await SocketIoClient.NodeAsync(server.Url, new { transports = new[] { transport }, reconnection = false, auth = new { token = sarah.Auth.AccessToken } });
        await client.EventAsync("team_joined");

        await client.RawAsync("42[\"chat_message\",{not json");
        (await client.EventAsync("error")).GetProperty("code").GetString().ShouldBe("bad_json");
        await client.RawAsync("42{\"an\":\"object, not an array\"}");
        (await client.EventAsync("error")).GetProperty("code").GetString().ShouldBe("invalid_message");
        await client.RawAsync("42[\"chat_message\",\"a string, not an object\"]");
        (await client.EventAsync("error")).GetProperty("code").GetString().ShouldBe("invalid_message");
        await client.RawAsync("4x");
        (await client.EventAsync("error")).GetProperty("code").GetString().ShouldBe("invalid_message");
        await client.RawAsync("451-[\"chat_message\",{\"_placeholder\":true,\"num\":0}]");
        (await client.EventAsync("error")).GetProperty("code").GetString().ShouldBe("binary_not_supported");
        await client.RawAsync("42[\"no_such_event\",{}]");
        (await client.EventAsync("error")).GetProperty("code").GetString().ShouldBe("unknown_type");
        // Larger than Covibe:Hub:MaxMessageBytes (64 KiB): refused unread, so it gets no acknowledgement, but an error.
        await client.SendAsync("chat_message", new { message = new string('x', 70 * 1024) });
        (await client.EventAsync("error")).GetProperty("code").GetString().ShouldBe("message_too_large");

        // Still connected, still joined.
        (await client.EmitAsync("chat_message", new { message = "still fine" })).GetProperty("type").GetString().ShouldBe("ok");
        (await client.EventAsync("chat_message")).GetProperty("message").GetString().ShouldBe("still fine");
    }

    [Fact]
    public async Task Flood_IsRefusedWithOneErrorASecond_AndTheConnectionStaysUsable()
    {
        await using var server = await TestServer.StartAsync(settings: Settings);
        var sarah = await server.CreateTeamAsync();
        await using var client = await SocketIoClient.NodeAsync(server.Url, new { transports = new[] { "websocket" }, reconnection = false, auth = new { token = sarah.Auth.AccessToken } });
        await client.EventAsync("team_joined");
        for (var i = 0; i < 300; i++)
        {
            await client.SendAsync("presence_update", new { status = "online" });
        }
        var refused = await client.EventAsync("error");
        refused.GetProperty("code").GetString().ShouldBe("rate_limited");
        await Eventually.UntilAsync(async () =>
        {
            try
            {
                return (await client.EmitAsync("chat_message", new { message = "after the flood" }, TimeSpan.FromSeconds(2))).GetProperty("type").GetString() == "ok";
            }
            catch (TimeoutException)
            {
                return false;
            }
        }, "the connection takes messages again", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task RevokedLogin_DisconnectsTheSocketAtOnce_AndTheClientDoesNotReconnect()
    {
        await using var server = await TestServer.StartAsync(settings: Settings);
        var sarah = await server.CreateTeamAsync();
        await using var client = await SocketIoClient.NodeAsync(server.Url, new { auth = new { token = sarah.Auth.AccessToken } });
        await client.EventAsync("team_joined");
        using var http = server.Client(sarah.Auth.AccessToken);
        (await http.PostAsync("/api/auth/logout", null)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        var error = await client.EventAsync("error");
        error.GetProperty("code").GetString().ShouldBe("session_revoked");
        error.GetProperty("fatal").GetBoolean().ShouldBeTrue();
        (await client.NextAsync("disconnect", TimeSpan.FromSeconds(5))).GetProperty("reason").GetString().ShouldBe("io server disconnect");
    }

    [Fact]
    public async Task TurnedOff_TheEndpointAndItsScriptAreNotServed()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Hub:SocketIo:Enabled"] = "false" });
        using var http = new HttpClient { BaseAddress = server.Url };
        (await http.GetAsync("/socket.io/?EIO=4&transport=polling")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await http.GetAsync("/socket.io/socket.io.js")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task AnotherOrigin_IsRefusedBeforeASessionStarts()
    {
        await using var server = await TestServer.StartAsync(settings: Settings);
        using var http = new HttpClient { BaseAddress = server.Url };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/socket.io/?EIO=4&transport=polling");
        request.Headers.Add("Origin", "https://evil.example");
        using var reply = await http.SendAsync(request);
        reply.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await reply.Content.ReadAsStringAsync()).ShouldNotContain("\"sid\"");
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.SetRequestHeader("Origin", "https://evil.example");
        await Should.ThrowAsync<System.Net.WebSockets.WebSocketException>(() =>
            socket.ConnectAsync(new Uri($"ws://{server.Url.Authority}/socket.io/?EIO=4&transport=websocket"), CancellationToken.None));
    }

    [Fact]
    public async Task OneConnectionTooMany_IsToldSoAndDisconnected()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string>(Settings) { ["Covibe:Hub:MaxConnectionsPerMember"] = "2" });
        var sarah = await server.CreateTeamAsync();
        await using var tab1 = await server.ConnectAsync(sarah.Auth.AccessToken);
        await tab1.ReceiveAsync("team_joined");
        await using var tab2 = await SocketIoClient.NodeAsync(server.Url, new { auth = new { token = sarah.Auth.AccessToken } });
        await tab2.EventAsync("team_joined");
        await using var tab3 = await SocketIoClient.NodeAsync(server.Url, new { auth = new { token = sarah.Auth.AccessToken } });
        var refused = await tab3.EventAsync("error");
        refused.GetProperty("code").GetString().ShouldBe("too_many_connections");
        (await tab3.NextAsync("disconnect")).GetProperty("reason").GetString().ShouldBe("io server disconnect");
        await Should.ThrowAsync<TimeoutException>(() => tab3.EventAsync("team_joined", timeout: TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task AClientThatStopsPolling_IsDropped_AndDoesNotSlowItsTeam()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string>(Settings)
        {
            ["Covibe:Hub:SendQueueCapacity"] = "16",
            ["Covibe:Hub:SocketIo:PollBufferBytes"] = "16384",
            ["Covibe:Hub:MessagesPerSecond"] = "100000",
        });
        var (sarah, miguel) = await server.CreateTeamWithMemberAsync();
        using var http = new HttpClient { BaseAddress = server.Url };
        var (sid, _) = await ConnectPollingAsync(http, sarah.Auth.AccessToken);
        // Sarah's client never polls again. Miguel talks: 200 messages of 2 KB, far past what her session may hold.
        await using var miguelHub = await server.ConnectAsync(miguel.AccessToken);
        await miguelHub.ReceiveAsync("team_joined");
        for (var i = 0; i < 200; i++)
        {
            await miguelHub.SendAsync(new { type = "chat_message", message = $"{i:D3} {new string('m', 2000)}" });
            if (i % 20 == 19)
            {
                var last = $"{i:D3}";
                await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "chat_message" && m.GetProperty("message").GetString()!.StartsWith(last, StringComparison.Ordinal));
            }
        }
        // Dropped (long before its ping timeout): its id is unknown now. Asked with a pong, which takes nothing from it.
        await Eventually.UntilAsync(async () =>
        {
            using var pong = await http.PostAsync($"/socket.io/?EIO=4&transport=polling&sid={sid}", new StringContent("3"));
            return pong.StatusCode == HttpStatusCode.BadRequest;
        }, "the slow session is dropped", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Heartbeat_AClientThatAnswersPingsStays_OneThatStopsIsLetGo()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string>(Settings)
        {
            ["Covibe:Hub:SocketIo:PingIntervalMilliseconds"] = "200",
            // Room for a busy machine between a ping's GET and its pong's POST (300 ms failed a full run once).
            ["Covibe:Hub:SocketIo:PingTimeoutMilliseconds"] = "2000",
            ["Covibe:Hub:JoinTimeoutSeconds"] = "60",
        });
        var sarah = await server.CreateTeamAsync();
        using var http = new HttpClient { BaseAddress = server.Url };
        var (sid, open) = await ConnectPollingAsync(http, sarah.Auth.AccessToken);
        open.GetProperty("pingInterval").GetInt32().ShouldBe(200);
        var url = $"/socket.io/?EIO=4&transport=polling&sid={sid}";

        // Five pings, each answered: the session lives on well past one interval and timeout.
        for (var pings = 0; pings < 5;)
        {
            var packets = (await http.GetStringAsync(url)).Split('\u001e');
            if (packets.Contains("2"))
            {
                pings++;
                (await (await http.PostAsync(url, new StringContent("3"))).Content.ReadAsStringAsync()).ShouldBe("ok");
            }
        }
        // Then no answer: let go after the timeout (its id is unknown).
        while (!(await http.GetStringAsync(url)).Split('\u001e').Contains("2"))
        {
        }
        await Eventually.UntilAsync(async () => (await http.GetAsync(url)).StatusCode == HttpStatusCode.BadRequest, "the silent session is let go", TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task RevokedWhileUpgrading_TheErrorAndDisconnectArriveOnTheNewWebSocket()
    {
        // The race a busy machine showed: the login is revoked after the client has stopped polling to upgrade and before
        // it sends "upgrade". What polling held (the error, the disconnect) must go out on the WebSocket.
        await using var server = await TestServer.StartAsync(settings: Settings);
        var sarah = await server.CreateTeamAsync();
        using var http = new HttpClient { BaseAddress = server.Url };
        var (sid, _) = await ConnectPollingAsync(http, sarah.Auth.AccessToken);
        var joined = await http.GetStringAsync($"/socket.io/?EIO=4&transport=polling&sid={sid}");
        joined.ShouldContain("team_joined");

        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://{server.Url.Authority}/socket.io/?EIO=4&transport=websocket&sid={sid}"), CancellationToken.None);
        await socket.SendAsync("2probe"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        (await ReceiveTextAsync(socket)).ShouldBe("3probe");
        using (var client = server.Client(sarah.Auth.AccessToken))
        {
            (await client.PostAsync("/api/auth/logout", null)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        }
        await socket.SendAsync("5"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        var heard = new List<string>();
        while (await ReceiveTextAsync(socket) is { } text)
        {
            heard.Add(text);
        }
        heard.ShouldContain(t => t.StartsWith("42[\"error\"", StringComparison.Ordinal) && t.Contains("session_revoked"));
        heard.ShouldContain("41");
        heard.IndexOf("41").ShouldBeGreaterThan(heard.FindIndex(t => t.Contains("session_revoked")));
    }

    /// <summary>A long-polling session by hand: the handshake, then CONNECT with the token in its auth. Its id and the open packet.</summary>
    private static async Task<(string Sid, JsonElement Open)> ConnectPollingAsync(HttpClient http, string token)
    {
        var handshake = await http.GetStringAsync("/socket.io/?EIO=4&transport=polling");
        var open = JsonDocument.Parse(handshake[1..]).RootElement.Clone();
        var sid = open.GetProperty("sid").GetString()!;
        using var connect = await http.PostAsync($"/socket.io/?EIO=4&transport=polling&sid={sid}", new StringContent($"40{{\"token\":\"{token}\"}}"));
        (await connect.Content.ReadAsStringAsync()).ShouldBe("ok");
        return (sid, open);
    }

    /// <summary>The next text message, or null once the server has closed.</summary>
    private static async Task<string?> ReceiveTextAsync(System.Net.WebSockets.ClientWebSocket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[64 * 1024];
        var result = await socket.ReceiveAsync(buffer, timeout.Token);
        return result.MessageType == System.Net.WebSockets.WebSocketMessageType.Close ? null : Encoding.UTF8.GetString(buffer, 0, result.Count);
    }

    [Fact]
    public async Task SessionIds_GuessedReusedOrFromElsewhere_AreUnknown_AndProtocolMisuseEndsTheSession()
    {
        await using var server = await TestServer.StartAsync(settings: Settings);
        using var http = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(30) };
        async Task<(HttpStatusCode Status, string Body)> Get(string query, string? from = null)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/socket.io/?" + query);
            if (from is not null)
            {
                request.Headers.Add("X-Forwarded-For", from);
            }
            using var reply = await http.SendAsync(request);
            return (reply.StatusCode, await reply.Content.ReadAsStringAsync());
        }
        async Task<(HttpStatusCode Status, string Body)> Post(string sid, string body, string? from = null)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/socket.io/?EIO=4&transport=polling&sid={sid}") { Content = new StringContent(body, Encoding.UTF8, "text/plain") };
            if (from is not null)
            {
                request.Headers.Add("X-Forwarded-For", from);
            }
            using var reply = await http.SendAsync(request);
            return (reply.StatusCode, await reply.Content.ReadAsStringAsync());
        }
        static int Code(string body) => JsonDocument.Parse(body).RootElement.GetProperty("code").GetInt32();

        Code((await Get("EIO=3&transport=polling")).Body).ShouldBe(5);
        Code((await Get("EIO=4&transport=carrier-pigeon")).Body).ShouldBe(0);
        var guessed = await Get("EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAAAAAAA");
        guessed.Status.ShouldBe(HttpStatusCode.BadRequest);
        Code(guessed.Body).ShouldBe(1);

        // A real session, from 10.0.0.5 (through the trusted proxy).
        var (status, open) = await Get("EIO=4&transport=polling", from: "10.0.0.5");
        status.ShouldBe(HttpStatusCode.OK);
        var sid = JsonDocument.Parse(open[1..]).RootElement.GetProperty("sid").GetString()!;
        sid.Length.ShouldBeGreaterThanOrEqualTo(26, "20 random bytes");
        (await Post(sid, "40", from: "10.0.0.5")).Body.ShouldBe("ok");
        (await Get($"EIO=4&transport=polling&sid={sid}", from: "10.0.0.5")).Body.ShouldStartWith("40{\"sid\":");

        // The same id from another address: unknown there, and nothing it sends reaches the session.
        var elsewhere = await Post(sid, "42[\"chat_message\",{\"message\":\"injected\"}]", from: "10.0.0.66");
        elsewhere.Status.ShouldBe(HttpStatusCode.BadRequest);
        Code(elsewhere.Body).ShouldBe(1);
        Code((await Get($"EIO=4&transport=polling&sid={sid}", from: "10.0.0.66")).Body).ShouldBe(1);

        // Two GETs at once: the protocol says the session ends. One is refused, the one that waited is let go; the id is dead after.
        var both = await Task.WhenAll(Get($"EIO=4&transport=polling&sid={sid}", from: "10.0.0.5"), Get($"EIO=4&transport=polling&sid={sid}", from: "10.0.0.5"))
            .WaitAsync(TimeSpan.FromSeconds(10));
        both.Select(r => r.Status).Order().ShouldBe([HttpStatusCode.OK, HttpStatusCode.BadRequest]);
        await Eventually.UntilAsync(async () => (await Post(sid, "3", from: "10.0.0.5")).Status == HttpStatusCode.BadRequest, "the session is gone", TimeSpan.FromSeconds(5));

        // A POST over maxPayload ends its session with 413.
        var (_, second) = await Get("EIO=4&transport=polling");
        var sid2 = JsonDocument.Parse(second[1..]).RootElement.GetProperty("sid").GetString()!;
        var tooBig = await Post(sid2, "42[\"chat_message\",{\"message\":\"" + new string('x', 1_100_000) + "\"}]");
        tooBig.Status.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        await Eventually.UntilAsync(async () => (await Post(sid2, "3")).Status == HttpStatusCode.BadRequest, "the session is gone", TimeSpan.FromSeconds(5));
    }
}
