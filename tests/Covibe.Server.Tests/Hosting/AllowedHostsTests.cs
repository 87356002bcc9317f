using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Names the server answers to: a request for another host name (DNS rebinding) is refused everywhere.</summary>
public sealed class AllowedHostsTests
{
    [Fact]
    public async Task DnsRebinding_ARequestForAnotherHostName_IsRefusedOnTheApiHubAndTerminals()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await server.CreateTeamAsync();
        using var http = new HttpClient();
        async Task<HttpResponseMessage> SendAsync(string path, string host, bool upgrade = false)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.Url, path));
            request.Headers.Host = host;
            request.Headers.Authorization = new("Bearer", owner.Auth.AccessToken);
            if (upgrade)
            {
                // A rebinding page's WebSocket: its own name as Host and as Origin, so "same origin" would hold.
                request.Headers.Add("Origin", $"http://{host}");
                request.Headers.Connection.Add("Upgrade");
                request.Headers.Upgrade.Add(new("websocket"));
                request.Headers.Add("Sec-WebSocket-Version", "13");
                request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
            }
            return await http.SendAsync(request);
        }
        var refused = await (await SendAsync("/api/team", "rebind.example")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "host-not-allowed");
        refused.GetProperty("detail").GetString()!.ShouldContain("ALLOWED_HOSTS");
        (await SendAsync("/ws", $"rebind.example:{server.Url.Port}", upgrade: true)).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await SendAsync("/terminal", $"rebind.example:{server.Url.Port}", upgrade: true)).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        // The server's own names still work.
        (await SendAsync("/api/team", $"localhost:{server.Url.Port}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await SendAsync("/api/team", $"127.0.0.1:{server.Url.Port}")).StatusCode.ShouldBe(HttpStatusCode.OK);

        await using var named = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:AllowedHosts"] = "covibe.example.com" });
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(named.Url, "/health"));
        request.Headers.Host = "covibe.example.com";
        (await http.SendAsync(request)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync(new Uri(named.Url, "/health"))).StatusCode.ShouldBe(HttpStatusCode.OK); // loopback, always
        using var other = new HttpRequestMessage(HttpMethod.Get, new Uri(named.Url, "/health"));
        other.Headers.Host = "rebind.example";
        (await http.SendAsync(other)).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
    }
}
