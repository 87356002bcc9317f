using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Sign-in limits and the lifetimes of tokens and invites, on a clock the test moves.</summary>
public sealed class AuthLimitsTests
{
    [Fact]
    public async Task Login_TooManyAttempts_Returns429WithRetryAfter_AndHubJoinIsLimitedToo()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Auth:AttemptsPerMinute"] = "3" });
        var owner = await server.CreateTeamAsync(); // attempt 1
        using var client = server.Client();
        for (var i = 0; i < 2; i++)
        {
            (await client.PostAsJsonAsync("/api/auth/login", new LoginRequest(owner.Auth.User.Email, "wrong password"))).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        }
        using var limited = await client.PostAsJsonAsync("/api/auth/login", new LoginRequest(owner.Auth.User.Email, TestServer.Password));
        await limited.ShouldBeProblemAsync(HttpStatusCode.TooManyRequests, "rate-limited");
        int.Parse(limited.Headers.RetryAfter!.ToString(), System.Globalization.CultureInfo.InvariantCulture).ShouldBeInRange(1, 60);
        await (await client.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(owner.Auth.RefreshToken))).ShouldBeProblemAsync(HttpStatusCode.TooManyRequests, "rate-limited");

        await using var hub = await server.ConnectAsync();
        await hub.SendAsync(new { type = "join_team", teamId = owner.Auth.Team.Id, token = owner.Auth.AccessToken });
        (await hub.ReceiveAsync("error")).GetProperty("code").GetString().ShouldBe("rate_limited");
    }

    [Fact]
    public async Task AccessToken_AfterItsLifetimePlusSkew_IsRefusedAsExpired_RefreshStillWorks()
    {
        var clock = new ManualClock();
        await using var server = await TestServer.StartAsync(clock: clock);
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);

        clock.Advance(TimeSpan.FromMinutes(15) + TimeSpan.FromSeconds(20)); // within the 30 s skew
        (await client.GetAsync("/api/auth/me")).StatusCode.ShouldBe(HttpStatusCode.OK);
        clock.Advance(TimeSpan.FromSeconds(20));
        var problem = await (await client.GetAsync("/api/auth/me")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        problem.GetProperty("detail").GetString()!.ShouldContain("expired");

        using var refreshed = await server.Client().PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(owner.Auth.RefreshToken));
        refreshed.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task RefreshToken_AfterItsLifetime_IsRefused()
    {
        var clock = new ManualClock();
        await using var server = await TestServer.StartAsync(clock: clock, settings: new Dictionary<string, string> { ["Covibe:Auth:RefreshTokenDays"] = "1" });
        var owner = await server.CreateTeamAsync();
        clock.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
        await (await server.Client().PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(owner.Auth.RefreshToken)))
            .ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "invalid-refresh-token");
    }

    [Fact]
    public async Task Invite_AfterExpiry_IsRefusedWithTheExpiryInTheMessage()
    {
        var clock = new ManualClock();
        await using var server = await TestServer.StartAsync(clock: clock);
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var invite = (await (await client.PostAsJsonAsync("/api/team/invite", new CreateInviteRequest(ExpiresInHours: 2))).Content.ReadFromJsonAsync<InviteResponse>())!;
        clock.Advance(TimeSpan.FromHours(2) + TimeSpan.FromSeconds(1));
        using var join = await server.Client().PostAsJsonAsync("/api/auth/login", new LoginRequest("late@example.com", TestServer.Password, invite.InviteCode, "Late"));
        (await join.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "invalid-invite")).GetProperty("detail").GetString()!.ShouldContain("expired");
    }
}
