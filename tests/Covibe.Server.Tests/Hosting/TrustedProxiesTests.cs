using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Behind a load balancer the per-address limits count clients, not the balancer: <c>X-Forwarded-For</c> is believed
/// from the configured proxies only. A client that sends the header itself, to a node that does not trust it, gains
/// nothing.
/// </summary>
public sealed class TrustedProxiesTests
{
    private static async Task<HttpStatusCode> AttemptAsync(TestServer server, string? forwardedFor)
    {
        using var client = server.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/auth/login") { Content = JsonContent.Create(new LoginRequest("nobody@example.com", "wrong")) };
        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }
        using var reply = await client.SendAsync(request);
        return reply.StatusCode;
    }

    [Fact]
    public async Task FromATrustedProxy_EachForwardedClientHasItsOwnLimit()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string>
        {
            ["Covibe:Auth:AttemptsPerMinute"] = "2",
            ["Covibe:TrustedProxies"] = "127.0.0.1, 10.0.0.0/8",
        });
        (await AttemptAsync(server, "203.0.113.5")).ShouldBe(HttpStatusCode.Unauthorized);
        (await AttemptAsync(server, "203.0.113.5")).ShouldBe(HttpStatusCode.Unauthorized);
        (await AttemptAsync(server, "203.0.113.5")).ShouldBe(HttpStatusCode.TooManyRequests);
        (await AttemptAsync(server, "198.51.100.7")).ShouldBe(HttpStatusCode.Unauthorized, "another client behind the same proxy");
    }

    [Fact]
    public async Task WithoutTrustedProxies_AForwardedForHeaderIsIgnored()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Auth:AttemptsPerMinute"] = "2" });
        (await AttemptAsync(server, "203.0.113.5")).ShouldBe(HttpStatusCode.Unauthorized);
        (await AttemptAsync(server, "203.0.113.6")).ShouldBe(HttpStatusCode.Unauthorized);
        (await AttemptAsync(server, "203.0.113.7")).ShouldBe(HttpStatusCode.TooManyRequests, "a made-up address is no way around the limit");
    }

    [Fact]
    public async Task ATrustedProxyThatIsNoAddress_StopsTheServerWithAClearError()
    {
        var error = await Should.ThrowAsync<Exception>(() => TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:TrustedProxies"] = "balancer.local" }));
        error.ToString().ShouldContain("TRUSTED_PROXIES");
    }
}
