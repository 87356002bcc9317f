using Covibe.Server.Hosting;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Hub;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Teams;

/// <summary>Seed 001's <c>/api/team/*</c> routes, plus members, invite listing and revocation.</summary>
public static class TeamsApi
{
    public static IServiceCollection AddTeams(this IServiceCollection services)
    {
        services.AddOptions<TeamsOptions>().BindConfiguration(TeamsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IPostConfigureOptions<TeamsOptions>, SignupDefaults>();
        return services;
    }

    public static IEndpointRouteBuilder MapTeamsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/team").WithTags("Team");
        api.MapPost("/create", CreateTeam).AllowAnonymous().AddEndpointFilter<AttemptFilter>();

        var members = api.MapGroup("").RequireAuthorization();
        members.MapGet("", GetTeam);
        members.MapPost("/invite", CreateInvite);
        members.MapGet("/invites", ListInvites);
        members.MapDelete("/invites/{id}", RevokeInvite);
        members.MapDelete("/members/{userId}", RemoveMember);
        return app;
    }

    public static async Task<Results<Created<CreateTeamResponse>, ValidationProblem, ProblemHttpResult>> CreateTeam(
        CreateTeamRequest request, CovibeDb db, AuthService auth, PasswordHasher hasher,
        IOptions<TeamsOptions> options, TimeProvider time, HttpContext http, CancellationToken cancellationToken)
    {
        if (options.Value.Signup == TeamsOptions.Closed)
        {
            return Problems.Forbidden("This server does not allow creating teams. Ask a member of an existing team for an invite code.");
        }
        if (options.Value.Signup == TeamsOptions.Token && !Tokens.FixedTimeEquals(request.SignupToken, options.Value.SignupToken))
        {
            return Problems.Create(403, "signup-token-required", "Signup token required",
                "Creating a team on this server needs the operator's signup token ('signupToken'). Ask the server's operator for it, or ask a member of an existing team for an invite code.");
        }
        var v = new Validator();
        var name = v.Text("name", request.Name, 80);
        var userName = v.Text("userName", request.UserName, 80);
        var email = v.Email("email", request.Email);
        var password = v.Password("password", request.Password);
        if (!v.IsValid)
        {
            return Problems.Validation(v.Errors);
        }

        var now = time.GetUtcNow().UtcDateTime;
        var userId = Tokens.NewId();
        var team = new Team { Id = Tokens.NewId(), Name = name, OwnerId = userId, CreatedAt = now };
        var user = new User { Id = userId, TeamId = team.Id, Email = email, Name = userName, PasswordHash = hasher.Hash(password), CreatedAt = now };
        db.Teams.Add(team);
        db.Users.Add(user);
        var invite = AddInvite(db, team.Id, userId, now, now.AddHours(options.Value.InviteExpiryHours), maxUses: null);
        var session = await auth.StartSessionAsync(db, team, user, cancellationToken);
        return TypedResults.Created("/api/team", new CreateTeamResponse(WebSession.Issue(http, session), invite));
    }

    public static async Task<Ok<TeamResponse>> GetTeam(Caller caller, CovibeDb db, TeamHub hub, CancellationToken cancellationToken)
    {
        var team = await db.Teams.AsNoTracking().SingleAsync(t => t.Id == caller.TeamId, cancellationToken);
        var users = await db.Users.AsNoTracking()
            .Where(u => u.TeamId == caller.TeamId && u.RemovedAt == null)
            .OrderBy(u => u.CreatedAt)
            .ToListAsync(cancellationToken);
        var online = hub.OnlineMembers(caller.TeamId);
        return TypedResults.Ok(new TeamResponse(team.ToDto(), [.. users.Select(u => new MemberDto(
            u.Id, u.Name, u.Email, u.Id == team.OwnerId, u.CreatedAt,
            online.TryGetValue(u.Id, out var o) ? o.Status : PresenceStatuses.Offline))]));
    }

    public static async Task<Results<Created<InviteResponse>, ValidationProblem>> CreateInvite(
        Caller caller, CreateInviteRequest? request, CovibeDb db, IOptions<TeamsOptions> options, TimeProvider time, CancellationToken cancellationToken)
    {
        var v = new Validator();
        var hours = request?.ExpiresInHours ?? options.Value.InviteExpiryHours;
        if (hours is < 1 or > 720)
        {
            v.Fail("expiresInHours", "'expiresInHours' must be between 1 and 720 (30 days).");
        }
        if (request?.MaxUses is < 1 or > 1000)
        {
            v.Fail("maxUses", "'maxUses' must be between 1 and 1000, or left out for no limit.");
        }
        if (!v.IsValid)
        {
            return Problems.Validation(v.Errors);
        }
        var now = time.GetUtcNow().UtcDateTime;
        var invite = AddInvite(db, caller.TeamId, caller.UserId, now, now.AddHours(hours), request?.MaxUses);
        await db.SaveChangesAsync(cancellationToken);
        return TypedResults.Created("/api/team/invites", invite);
    }

    public static async Task<Ok<InviteSummary[]>> ListInvites(Caller caller, CovibeDb db, CancellationToken cancellationToken)
    {
        var invites = await db.Invites.AsNoTracking()
            .Where(i => i.TeamId == caller.TeamId)
            .OrderByDescending(i => i.CreatedAt)
            .ToListAsync(cancellationToken);
        return TypedResults.Ok(invites.Select(i => i.ToSummary()).ToArray());
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeInvite(
        string id, Caller caller, CovibeDb db, TimeProvider time, CancellationToken cancellationToken)
    {
        var invite = await db.Invites.SingleOrDefaultAsync(i => i.Id == id && i.TeamId == caller.TeamId, cancellationToken);
        if (invite is null)
        {
            return Problems.NotFound("Invite", $"Your team has no invite '{id}'. List them with GET /api/team/invites.");
        }
        var ownerId = await db.Teams.Where(t => t.Id == caller.TeamId).Select(t => t.OwnerId).SingleAsync(cancellationToken);
        if (invite.CreatedBy != caller.UserId && ownerId != caller.UserId)
        {
            return Problems.Forbidden("Only the member who created an invite, or the team owner, can revoke it.");
        }
        invite.RevokedAt ??= time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        return TypedResults.NoContent();
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RemoveMember(
        string userId, Caller caller, CovibeDb db, AuthService auth, TeamHub hub, TimeProvider time, CancellationToken cancellationToken)
    {
        var team = await db.Teams.SingleAsync(t => t.Id == caller.TeamId, cancellationToken);
        if (team.OwnerId != caller.UserId)
        {
            return Problems.Forbidden("Only the team owner can remove members.");
        }
        if (userId == caller.UserId)
        {
            return Problems.Conflict("owner-cannot-leave", "The owner cannot be removed", "The team owner cannot remove themselves.");
        }
        var user = await db.Users.SingleOrDefaultAsync(u => u.Id == userId && u.TeamId == caller.TeamId && u.RemovedAt == null, cancellationToken);
        if (user is null)
        {
            return Problems.NotFound("Member", $"Your team has no member '{userId}'. List members with GET /api/team.");
        }
        user.RemovedAt = time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        await auth.RevokeUserAsync(db, user.Id, "removed from team", cancellationToken);
        hub.PresenceChanged(team.Id);
        return TypedResults.NoContent();
    }

    internal static InviteResponse AddInvite(CovibeDb db, string teamId, string createdBy, DateTime now, DateTime expiresAt, int? maxUses)
    {
        var code = InviteCodes.New();
        var invite = new Invite
        {
            Id = Tokens.NewId(),
            TeamId = teamId,
            CodeHash = InviteCodes.Hash(code),
            CreatedBy = createdBy,
            CreatedAt = now,
            ExpiresAt = expiresAt,
            MaxUses = maxUses,
        };
        db.Invites.Add(invite);
        return new InviteResponse(invite.Id, code, expiresAt, maxUses);
    }

    /// <summary>Open signup in development; elsewhere the operator's token, made once and kept owner-only in the data directory if not set.</summary>
    private sealed class SignupDefaults(IHostEnvironment environment, IOptions<ServerOptions> server) : IPostConfigureOptions<TeamsOptions>
    {
        public void PostConfigure(string? name, TeamsOptions options)
        {
            options.Signup ??= !options.AllowTeamCreation ? TeamsOptions.Closed : environment.IsDevelopment() ? TeamsOptions.Open : TeamsOptions.Token;
            if (options.Signup == TeamsOptions.Token && string.IsNullOrEmpty(options.SignupToken))
            {
                options.SignupToken = DevelopmentSecrets.ReadOrCreate(server.Value.DataDirectory, TeamsOptions.SignupTokenFile);
                options.SignupTokenPath = Path.Combine(server.Value.DataDirectory, TeamsOptions.SignupTokenFile);
            }
        }
    }
}
