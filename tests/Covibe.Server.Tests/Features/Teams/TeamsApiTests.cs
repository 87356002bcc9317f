using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Teams, invites and members over REST, and their error paths. Runs on SQLite and on PostgreSQL.</summary>
public abstract class TeamsApiTests
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
}

public sealed class SqliteTeamsApiTests(SqliteServerFixture fixture) : TeamsApiTests, IClassFixture<SqliteServerFixture>
{
    protected override Task<TestServer> ServerAsync() => Task.FromResult(fixture.Server);
}

[Collection(PostgresGroup.Name)]
public sealed class PostgresTeamsApiTests(PostgresServer postgres) : TeamsApiTests
{
    protected override Task<TestServer> ServerAsync() => postgres.SharedServerAsync();
}
