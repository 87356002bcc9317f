using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Logins, refresh and logout over REST, and what a missing or forged token gets. Runs on SQLite and on PostgreSQL.</summary>
public abstract class AuthApiTests
{
    protected abstract Task<TestServer> ServerAsync();

    [Fact]
    public async Task Login_WithInviteThenWithPassword_SameMemberBothTimes()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        var email = server.NewEmail("miguel");
        var joined = await server.JoinAsync(owner.Invite.InviteCode, "Miguel", email);
        joined.Team.Id.ShouldBe(owner.Auth.Team.Id);

        using var client = server.Client();
        using var reply = await client.PostAsJsonAsync("/api/auth/login", new LoginRequest(email.ToUpperInvariant(), TestServer.Password));
        reply.StatusCode.ShouldBe(HttpStatusCode.OK);
        var again = (await reply.Content.ReadFromJsonAsync<AuthResponse>())!;
        again.User.Id.ShouldBe(joined.User.Id);
        again.User.Name.ShouldBe("Miguel");
    }

    [Fact]
    public async Task Login_InviteCodeTypedLoosely_IsAccepted()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        var loose = owner.Invite.InviteCode.Replace("-", " ", StringComparison.Ordinal).ToLowerInvariant();
        var joined = await server.JoinAsync(loose, "Chen");
        joined.Team.Id.ShouldBe(owner.Auth.Team.Id);
    }

    [Fact]
    public async Task Login_WrongPassword_ReturnsUnauthorizedProblem()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client();
        using var reply = await client.PostAsJsonAsync("/api/auth/login", new LoginRequest(owner.Auth.User.Email, "wrong password!"));
        await reply.ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "invalid-credentials");
    }

    [Fact]
    public async Task Login_UnknownInvite_ReturnsInvalidInviteProblem()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        using var reply = await client.PostAsJsonAsync("/api/auth/login", new LoginRequest("x@example.com", TestServer.Password, "AAAA-BBBB-CCCC-DDDD", "X"));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "invalid-invite");
        problem.GetProperty("detail").GetString()!.ShouldContain("not valid");
    }

    [Fact]
    public async Task Login_JoinWithoutName_ReturnsValidationProblem()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client();
        using var reply = await client.PostAsJsonAsync("/api/auth/login", new LoginRequest(server.NewEmail("anon"), TestServer.Password, owner.Invite.InviteCode));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").TryGetProperty("name", out _).ShouldBeTrue();
    }

    [Fact]
    public async Task Login_EmailInTwoTeams_AsksForTeamIdThenLogsIntoChosenTeam()
    {
        var server = await ServerAsync();
        var first = await server.CreateTeamAsync("One");
        var second = await server.CreateTeamAsync("Two");
        var email = server.NewEmail("pat");
        await server.JoinAsync(first.Invite.InviteCode, "Pat", email);
        await server.JoinAsync(second.Invite.InviteCode, "Pat", email);

        using var client = server.Client();
        using var ambiguous = await client.PostAsJsonAsync("/api/auth/login", new LoginRequest(email, TestServer.Password));
        var problem = await ambiguous.ShouldBeProblemAsync(HttpStatusCode.Conflict, "ambiguous-team");
        problem.GetProperty("detail").GetString()!.ShouldContain(second.Auth.Team.Id);

        using var chosen = await client.PostAsJsonAsync("/api/auth/login", new LoginRequest(email, TestServer.Password, TeamId: second.Auth.Team.Id));
        (await chosen.Content.ReadFromJsonAsync<AuthResponse>())!.Team.Id.ShouldBe(second.Auth.Team.Id);
    }

    [Fact]
    public async Task Refresh_RotatesTokens_AndReuseOfOldTokenSignsTheWholeLoginOut()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client();

        using var first = await client.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(owner.Auth.RefreshToken));
        first.StatusCode.ShouldBe(HttpStatusCode.OK);
        var rotated = (await first.Content.ReadFromJsonAsync<AuthResponse>())!;
        rotated.RefreshToken.ShouldNotBe(owner.Auth.RefreshToken);
        using (var me = server.Client(rotated.AccessToken))
        {
            (await me.GetAsync("/api/auth/me")).StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        // Someone replays the old token: it is refused and the new one stops working too.
        using var replay = await client.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(owner.Auth.RefreshToken));
        var problem = await replay.ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "invalid-refresh-token");
        problem.GetProperty("detail").GetString()!.ShouldContain("already used");
        using var next = await client.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(rotated.RefreshToken));
        await next.ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "invalid-refresh-token");
        using var stale = server.Client(rotated.AccessToken);
        await (await stale.GetAsync("/api/auth/me")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Fact]
    public async Task Refresh_MissingOrUnknownToken_ReturnsProblem()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        await (await client.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(null))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        await (await client.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest("made-up"))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "invalid-refresh-token");
    }

    [Fact]
    public async Task Logout_EndsThisLoginOnly_AndAllDevicesEndsEvery()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var anon = server.Client();
        using var login2Reply = await anon.PostAsJsonAsync("/api/auth/login", new LoginRequest(owner.Auth.User.Email, TestServer.Password));
        var second = (await login2Reply.Content.ReadFromJsonAsync<AuthResponse>())!;
        using var login3Reply = await anon.PostAsJsonAsync("/api/auth/login", new LoginRequest(owner.Auth.User.Email, TestServer.Password));
        var third = (await login3Reply.Content.ReadFromJsonAsync<AuthResponse>())!;

        using var first = server.Client(owner.Auth.AccessToken);
        (await first.PostAsync("/api/auth/logout", null)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await first.GetAsync("/api/auth/me")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await anon.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(owner.Auth.RefreshToken))).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        using var secondClient = server.Client(second.AccessToken);
        (await secondClient.GetAsync("/api/auth/me")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // Logging out with only a refresh token (the access token may have expired) and allDevices.
        (await anon.PostAsJsonAsync("/api/auth/logout", new LogoutRequest(third.RefreshToken, AllDevices: true))).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await secondClient.GetAsync("/api/auth/me")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        using var thirdClient = server.Client(third.AccessToken);
        (await thirdClient.GetAsync("/api/auth/me")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Logout_WithNothing_ReturnsUnauthorizedProblem()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        await (await client.PostAsync("/api/auth/logout", null)).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Theory]
    [InlineData("GET", "/api/auth/me")]
    [InlineData("GET", "/api/team")]
    [InlineData("POST", "/api/team/invite")]
    [InlineData("GET", "/api/team/invites")]
    [InlineData("DELETE", "/api/team/invites/x")]
    [InlineData("DELETE", "/api/team/members/x")]
    [InlineData("POST", "/api/chat/message")]
    [InlineData("GET", "/api/chat/history")]
    public async Task ProtectedRoute_WithoutToken_ReturnsUnauthorizedProblem(string method, string path)
    {
        var server = await ServerAsync();
        using var client = server.Client();
        using var reply = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        problem.GetProperty("detail").GetString()!.ShouldContain("/api/auth/login");
    }

    [Fact]
    public async Task ProtectedRoute_ForgedToken_ReturnsUnauthorized()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        var parts = owner.Auth.AccessToken.Split('.');
        // Same header and claims, signature from another key; and the "none" algorithm.
        var forged = $"{parts[0]}.{parts[1]}.{parts[2][..^4]}AAAA";
        var none = $"{Base64Url("{\"alg\":\"none\",\"typ\":\"JWT\"}")}.{parts[1]}.";
        foreach (var token in new[] { forged, none, "garbage" })
        {
            using var client = server.Client(token);
            await (await client.GetAsync("/api/auth/me")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        }
    }

    private static string Base64Url(string text) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(text)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

public sealed class SqliteAuthApiTests(SqliteServerFixture fixture) : AuthApiTests, IClassFixture<SqliteServerFixture>
{
    protected override Task<TestServer> ServerAsync() => Task.FromResult(fixture.Server);
}

[Collection(PostgresGroup.Name)]
public sealed class PostgresAuthApiTests(PostgresServer postgres) : AuthApiTests
{
    protected override Task<TestServer> ServerAsync() => postgres.SharedServerAsync();
}
