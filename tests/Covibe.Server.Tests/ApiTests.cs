using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Every REST route and its error paths. Runs on SQLite and on PostgreSQL.</summary>
public abstract class ApiTests
{
    protected abstract Task<TestServer> ServerAsync();

    [Fact]
    public async Task CreateTeam_ValidRequest_ReturnsOwnerTokensAndInvite()
    {
        var server = await ServerAsync();
        var created = await server.CreateTeamAsync("Rocket", "Sarah");

        created.Auth.Team.Name.ShouldBe("Rocket");
        created.Auth.Team.OwnerId.ShouldBe(created.Auth.User.Id);
        created.Auth.AccessToken.ShouldNotBeNullOrEmpty();
        created.Auth.RefreshToken.ShouldNotBeNullOrEmpty();
        created.Invite.InviteCode.ShouldMatch("^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$");
        using var client = server.Client(created.Auth.AccessToken);
        var me = await client.GetFromJsonAsync<MeResponse>("/api/auth/me");
        me!.IsOwner.ShouldBeTrue();
        me.Team.Id.ShouldBe(created.Auth.Team.Id);
    }

    [Fact]
    public async Task CreateTeam_MissingAndBadFields_ReturnsValidationProblemNamingEach()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        using var reply = await client.PostAsJsonAsync("/api/team/create", new CreateTeamRequest("", "Sarah", "not-an-email", "short"));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        var errors = problem.GetProperty("errors");
        errors.TryGetProperty("name", out _).ShouldBeTrue();
        errors.TryGetProperty("email", out _).ShouldBeTrue();
        errors.TryGetProperty("password", out _).ShouldBeTrue();
        errors.TryGetProperty("userName", out _).ShouldBeFalse();
    }

    [Fact]
    public async Task CreateTeam_BodyNotJson_ReturnsBadRequestProblem()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        using var reply = await client.PostAsync("/api/team/create", new StringContent("{\"name\": ", Encoding.UTF8, "application/json"));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "bad-request");
        problem.GetProperty("detail").GetString()!.ShouldContain("JSON");
    }

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
    public async Task Invite_MaxUses_RefusesTheJoinAfterTheLimit()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        using var created = await client.PostAsJsonAsync("/api/team/invite", new CreateInviteRequest(ExpiresInHours: 1, MaxUses: 2));
        created.StatusCode.ShouldBe(HttpStatusCode.Created);
        var invite = (await created.Content.ReadFromJsonAsync<InviteResponse>())!;

        await server.JoinAsync(invite.InviteCode, "A");
        await server.JoinAsync(invite.InviteCode, "B");
        using var third = await server.Client().PostAsJsonAsync("/api/auth/login", new LoginRequest(server.NewEmail("c"), TestServer.Password, invite.InviteCode, "C"));
        var problem = await third.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "invalid-invite");
        problem.GetProperty("detail").GetString()!.ShouldContain("used");

        var list = await client.GetFromJsonAsync<InviteSummary[]>("/api/team/invites");
        list!.Single(i => i.Id == invite.Id).Uses.ShouldBe(2);
    }

    [Fact]
    public async Task Invite_BadLimits_ReturnsValidationProblem()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        using var reply = await client.PostAsJsonAsync("/api/team/invite", new CreateInviteRequest(ExpiresInHours: 0, MaxUses: 0));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").EnumerateObject().Select(e => e.Name).ShouldBe(["expiresInHours", "maxUses"], ignoreOrder: true);
    }

    [Fact]
    public async Task Invite_Revoked_CannotBeUsedAndOnlyCreatorOrOwnerMayRevoke()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ownerClient = server.Client(owner.Auth.AccessToken);
        using var memberClient = server.Client(member.AccessToken);

        // The owner's invite: the member may not revoke it.
        using var notYours = await memberClient.DeleteAsync($"/api/team/invites/{owner.Invite.Id}");
        await notYours.ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");

        using var revoked = await ownerClient.DeleteAsync($"/api/team/invites/{owner.Invite.Id}");
        revoked.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        using var join = await server.Client().PostAsJsonAsync("/api/auth/login", new LoginRequest(server.NewEmail("late"), TestServer.Password, owner.Invite.InviteCode, "Late"));
        var problem = await join.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "invalid-invite");
        problem.GetProperty("detail").GetString()!.ShouldContain("revoked");

        using var unknown = await ownerClient.DeleteAsync("/api/team/invites/nope");
        await unknown.ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Invite_ListShowsNoCodes()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var body = await client.GetStringAsync("/api/team/invites");
        body.ShouldContain(owner.Invite.Id);
        body.ShouldNotContain(owner.Invite.InviteCode);
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

    [Fact]
    public async Task Team_ShowsMembersWithOwnerAndStatus()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        await using var hub = await server.ConnectAsync(member.AccessToken);
        await hub.ReceiveAsync("team_joined");

        using var client = server.Client(owner.Auth.AccessToken);
        var team = (await client.GetFromJsonAsync<TeamResponse>("/api/team"))!;
        team.Members.Length.ShouldBe(2);
        team.Members.Single(m => m.Id == owner.Auth.User.Id).ShouldSatisfyAllConditions(m => m.IsOwner.ShouldBeTrue(), m => m.Status.ShouldBe("offline"));
        team.Members.Single(m => m.Id == member.User.Id).ShouldSatisfyAllConditions(m => m.IsOwner.ShouldBeFalse(), m => m.Status.ShouldBe("online"));
    }

    [Fact]
    public async Task RemoveMember_ByOwner_EndsTheirAccessAndHidesThemFromTheTeam()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var memberClient = server.Client(member.AccessToken);
        using var ownerClient = server.Client(owner.Auth.AccessToken);

        await (await memberClient.DeleteAsync($"/api/team/members/{owner.Auth.User.Id}")).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await ownerClient.DeleteAsync($"/api/team/members/{owner.Auth.User.Id}")).ShouldBeProblemAsync(HttpStatusCode.Conflict, "owner-cannot-leave");
        await (await ownerClient.DeleteAsync("/api/team/members/nobody")).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");

        (await ownerClient.DeleteAsync($"/api/team/members/{member.User.Id}")).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        await (await memberClient.GetAsync("/api/chat/history")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        (await server.Client().PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(member.RefreshToken))).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await server.Client().PostAsJsonAsync("/api/auth/login", new LoginRequest(member.User.Email, TestServer.Password))).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        var team = (await ownerClient.GetFromJsonAsync<TeamResponse>("/api/team"))!;
        team.Members.Select(m => m.Id).ShouldBe([owner.Auth.User.Id]);
    }

    [Fact]
    public async Task RemovedMember_InvitedBack_GetsTheSameAccount()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ownerClient = server.Client(owner.Auth.AccessToken);
        (await ownerClient.DeleteAsync($"/api/team/members/{member.User.Id}")).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        var back = await server.JoinAsync(owner.Invite.InviteCode, "Miguel again", member.User.Email);
        back.User.Id.ShouldBe(member.User.Id);
        back.User.Name.ShouldBe("Miguel again");
    }

    [Fact]
    public async Task Chat_PostThenHistory_PagesBackAndCatchesUp()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var posted = new List<ChatMessageDto>();
        for (var i = 0; i < 7; i++)
        {
            using var reply = await client.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest($"message {i}"));
            reply.StatusCode.ShouldBe(HttpStatusCode.Created);
            posted.Add((await reply.Content.ReadFromJsonAsync<ChatMessageDto>())!);
        }
        posted.Select(p => p.Id).ShouldBeInOrder();
        posted[0].UserName.ShouldBe("Sarah");

        using var memberClient = server.Client(member.AccessToken);
        var latest = (await memberClient.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history?limit=3"))!;
        latest.Messages.Select(m => m.Message).ShouldBe(["message 4", "message 5", "message 6"]);
        latest.NextBefore.ShouldBe(posted[4].Id);
        var older = (await memberClient.GetFromJsonAsync<ChatHistoryResponse>($"/api/chat/history?limit=3&before={latest.NextBefore}"))!;
        older.Messages.Select(m => m.Message).ShouldBe(["message 1", "message 2", "message 3"]);
        var oldest = (await memberClient.GetFromJsonAsync<ChatHistoryResponse>($"/api/chat/history?limit=3&before={older.NextBefore}"))!;
        oldest.Messages.Select(m => m.Message).ShouldBe(["message 0"]);
        oldest.NextBefore.ShouldBeNull();

        var missed = (await memberClient.GetFromJsonAsync<ChatHistoryResponse>($"/api/chat/history?after={posted[4].Id}"))!;
        missed.Messages.Select(m => m.Message).ShouldBe(["message 5", "message 6"]);
    }

    [Fact]
    public async Task Chat_OtherTeam_SeesNoneOfIt()
    {
        var server = await ServerAsync();
        var a = await server.CreateTeamAsync("A");
        var b = await server.CreateTeamAsync("B");
        using var aClient = server.Client(a.Auth.AccessToken);
        (await aClient.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest("secret plans"))).StatusCode.ShouldBe(HttpStatusCode.Created);
        using var bClient = server.Client(b.Auth.AccessToken);
        var history = (await bClient.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history"))!;
        history.Messages.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public async Task Chat_BlankMessage_ReturnsValidationProblem(string? message)
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var problem = await (await client.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest(message))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").TryGetProperty("message", out _).ShouldBeTrue();
    }

    [Fact]
    public async Task Chat_TooLongMessage_IsRefusedAndNothingIsStored()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        await (await client.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest(new string('x', 4001)))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        (await client.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history"))!.Messages.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("?limit=0")]
    [InlineData("?limit=201")]
    [InlineData("?before=5&after=3")]
    public async Task Chat_BadHistoryQuery_ReturnsValidationProblem(string query)
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        await (await client.GetAsync("/api/chat/history" + query)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task Health_ReportsRunningInTheSeedShape()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        var health = (await client.GetFromJsonAsync<HealthResponse>("/health"))!;
        health.Status.ShouldBe("running");
        health.Version.ShouldNotBeNullOrEmpty();
        health.Uptime.ShouldBeGreaterThanOrEqualTo(0);
    }

    [Fact]
    public async Task OpenApi_DocumentListsTheSeedRoutes()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        var document = await client.GetStringAsync("/openapi/v1.json");
        foreach (var route in new[] { "/api/auth/login", "/api/auth/refresh", "/api/team/create", "/api/team/invite", "/api/chat/message", "/api/chat/history" })
        {
            document.ShouldContain($"\"{route}\"");
        }
    }

    [Fact]
    public async Task UnknownRoute_ReturnsNotFoundProblem()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        using var reply = await client.GetAsync("/api/nothing-here");
        reply.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        reply.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
    }

    private static string Base64Url(string text) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(text)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

public sealed class SqliteApiTests(SqliteServerFixture fixture) : ApiTests, IClassFixture<SqliteServerFixture>
{
    protected override Task<TestServer> ServerAsync() => Task.FromResult(fixture.Server);
}

[Collection(PostgresGroup.Name)]
public sealed class PostgresApiTests(PostgresServer postgres) : ApiTests
{
    protected override Task<TestServer> ServerAsync() => postgres.SharedServerAsync();
}
