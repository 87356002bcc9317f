using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Auth;

/// <summary>Seed 001's <c>/api/auth/login</c> and <c>/api/auth/refresh</c>, plus logout and the current user.</summary>
public static class AuthApi
{
    public static IServiceCollection AddCovibeAuth(this IServiceCollection services)
    {
        services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IPostConfigureOptions<AuthOptions>, DevelopmentJwtSecret>();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<AuthOptions>, AuthOptionsValidator>();
        services.AddSingleton<TokenService>();
        services.AddSingleton<AuthService>();
        services.AddSingleton<PasswordHasher>();
        services.AddSingleton<SessionEvents>();
        services.AddSingleton<IRateLimits, LocalRateLimits>();
        services.AddSingleton<AttemptLimiter>();
        // Access tokens by the framework's JwtBearer, on TokenService's rules; BearerEvents adds the session and the answers.
        services.AddScoped<BearerEvents>();
        services.AddAuthentication(BearerEvents.SchemeName).AddJwtBearer(BearerEvents.SchemeName, _ => { });
        services.AddOptions<Microsoft.AspNetCore.Authentication.JwtBearer.JwtBearerOptions>(BearerEvents.SchemeName).Configure<TokenService>((o, tokens) =>
        {
            o.TokenValidationParameters = tokens.Parameters;
            o.MapInboundClaims = false;
            o.EventsType = typeof(BearerEvents);
        });
        services.AddAuthorization();
        return services;
    }

    /// <summary>With <c>REDIS_URL</c>: revocations reach every node.</summary>
    public static IServiceCollection AddAuthAcrossNodes(this IServiceCollection services) => services.AddHostedService<RedisRevocations>();

    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/auth").WithTags("Auth");
        api.MapPost("/login", Login).AllowAnonymous().AddEndpointFilter<AttemptFilter>();
        api.MapPost("/refresh", Refresh).AllowAnonymous().AddEndpointFilter<AttemptFilter>();
        api.MapPost("/logout", Logout).AllowAnonymous();
        api.MapGet("/me", Me).RequireAuthorization();
        return app;
    }

    public static async Task<Results<Ok<AuthResponse>, ValidationProblem, ProblemHttpResult>> Login(
        LoginRequest request, CovibeDb db, AuthService auth, PasswordHasher hasher, TimeProvider time,
        ILogger<AuthService> logger, HttpContext http, CancellationToken cancellationToken)
    {
        var result = await LoginCoreAsync(request, db, auth, hasher, time, logger, cancellationToken);
        return result.Result is Ok<AuthResponse> ok ? TypedResults.Ok(WebSession.Issue(http, ok.Value!)) : result;
    }

    private static async Task<Results<Ok<AuthResponse>, ValidationProblem, ProblemHttpResult>> LoginCoreAsync(
        LoginRequest request, CovibeDb db, AuthService auth, PasswordHasher hasher, TimeProvider time,
        ILogger<AuthService> logger, CancellationToken cancellationToken)
    {
        var v = new Validator();
        var email = v.Email("email", request.Email);
        var password = request.Password ?? "";
        if (password.Length == 0)
        {
            v.Fail("password", "'password' is required.");
        }
        if (!v.IsValid)
        {
            return Problems.Validation(v.Errors);
        }
        return string.IsNullOrWhiteSpace(request.InviteCode)
            ? await LoginMemberAsync(request, email, password, db, auth, hasher, logger, cancellationToken)
            : await JoinWithInviteAsync(request, email, password, db, auth, hasher, time, logger, cancellationToken);
    }

    private static async Task<Results<Ok<AuthResponse>, ValidationProblem, ProblemHttpResult>> LoginMemberAsync(
        LoginRequest request, string email, string password, CovibeDb db, AuthService auth, PasswordHasher hasher,
        ILogger logger, CancellationToken cancellationToken)
    {
        var candidates = await db.Users
            .Where(u => u.Email == email && u.RemovedAt == null && (request.TeamId == null || u.TeamId == request.TeamId))
            .ToListAsync(cancellationToken);
        if (candidates.Count == 0)
        {
            hasher.VerifyNothing(password);
        }
        var matches = candidates.Where(u => hasher.Verify(password, u.PasswordHash)).ToList();
        if (matches.Count == 0)
        {
            AuthLog.LoginFailed(logger, "wrong email or password");
            return Problems.Unauthorized("invalid-credentials",
                "The email or password is wrong. To join a team for the first time, also send the 'inviteCode' a member gave you.");
        }
        if (matches.Count > 1)
        {
            var teamIds = matches.Select(u => u.TeamId).ToList();
            var teams = await db.Teams.Where(t => teamIds.Contains(t.Id)).Select(t => $"{t.Name} ({t.Id})").ToListAsync(cancellationToken);
            return Problems.Conflict("ambiguous-team", "Several teams match",
                $"This email belongs to several teams: {string.Join(", ", teams)}. Send 'teamId' to choose one.");
        }
        var user = matches[0];
        var team = await db.Teams.SingleAsync(t => t.Id == user.TeamId, cancellationToken);
        return TypedResults.Ok(await auth.StartSessionAsync(db, team, user, cancellationToken));
    }

    private static async Task<Results<Ok<AuthResponse>, ValidationProblem, ProblemHttpResult>> JoinWithInviteAsync(
        LoginRequest request, string email, string password, CovibeDb db, AuthService auth, PasswordHasher hasher,
        TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var hash = InviteCodes.Hash(request.InviteCode!);
        var invite = await db.Invites.AsNoTracking().SingleOrDefaultAsync(i => i.CodeHash == hash, cancellationToken);
        var refusal = invite switch
        {
            null => "The invite code is not valid. Check it, or ask a teammate for a new one (covibe team invite).",
            { RevokedAt: not null } => "This invite code was revoked. Ask a teammate for a new one.",
            _ when invite.ExpiresAt <= now => $"This invite code expired at {invite.ExpiresAt:u}. Ask a teammate for a new one.",
            _ => null,
        };
        if (refusal is not null)
        {
            AuthLog.LoginFailed(logger, "bad invite code");
            return Problems.BadRequest("invalid-invite", "Invite code not accepted", refusal);
        }
        var team = await db.Teams.SingleAsync(t => t.Id == invite!.TeamId, cancellationToken);
        var existing = await db.Users.SingleOrDefaultAsync(u => u.TeamId == team.Id && u.Email == email, cancellationToken);
        if (existing is { RemovedAt: null })
        {
            // Already a member: the invite is just how they found the team; it is not spent.
            if (!hasher.Verify(password, existing.PasswordHash))
            {
                AuthLog.LoginFailed(logger, "wrong password for existing member");
                return Problems.Unauthorized("invalid-credentials", "You are already a member of this team and the password is wrong.");
            }
            return TypedResults.Ok(await auth.StartSessionAsync(db, team, existing, cancellationToken));
        }

        var v = new Validator();
        var name = v.Text("name", request.Name, 80);
        v.Password("password", password);
        if (!v.IsValid)
        {
            return Problems.Validation(v.Errors);
        }
        // Spend one use atomically, so a limited invite cannot be over-used by racing requests.
        var spent = await db.Invites
            .Where(i => i.Id == invite!.Id && i.RevokedAt == null && i.ExpiresAt > now && (i.MaxUses == null || i.Uses < i.MaxUses))
            .ExecuteUpdateAsync(s => s.SetProperty(i => i.Uses, i => i.Uses + 1), cancellationToken);
        if (spent == 0)
        {
            return Problems.BadRequest("invalid-invite", "Invite code not accepted", "This invite code has been used as many times as it allows. Ask a teammate for a new one.");
        }
        User user;
        if (existing is not null)
        {
            // A removed member invited back: same account, new password.
            existing.RemovedAt = null;
            existing.Name = name;
            existing.PasswordHash = hasher.Hash(password);
            user = existing;
        }
        else
        {
            user = new User { Id = Tokens.NewId(), TeamId = team.Id, Email = email, Name = name, PasswordHash = hasher.Hash(password), CreatedAt = now };
            db.Users.Add(user);
        }
        try
        {
            return TypedResults.Ok(await auth.StartSessionAsync(db, team, user, cancellationToken));
        }
        catch (DbUpdateException)
        {
            return Problems.Conflict("email-taken", "Email already in the team", "Someone joined this team with that email a moment ago. Log in instead.");
        }
    }

    public static async Task<Results<Ok<AuthResponse>, ProblemHttpResult>> Refresh(RefreshRequest? request, AuthService auth, HttpContext http, CancellationToken cancellationToken)
    {
        var token = WebSession.RefreshToken(http, request?.RefreshToken);
        if (string.IsNullOrWhiteSpace(token))
        {
            return Problems.BadRequest("validation", "Refresh token missing", "Send {\"refreshToken\": \"...\"} as returned by login.");
        }
        var (response, failure) = await auth.RefreshAsync(token, cancellationToken);
        if (response is null)
        {
            if (WebSession.IsWeb(http))
            {
                WebSession.Clear(http);
            }
            return Problems.Unauthorized("invalid-refresh-token", failure!);
        }
        return TypedResults.Ok(WebSession.Issue(http, response));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Logout(
        HttpContext context, LogoutRequest? request, AuthService auth, CancellationToken cancellationToken)
    {
        var cookieToken = WebSession.IsWeb(context) ? WebSession.RefreshToken(context, null) : null;
        if (cookieToken is not null)
        {
            WebSession.Clear(context);
            request = (request ?? new LogoutRequest()) with { RefreshToken = request?.RefreshToken ?? cookieToken };
        }
        if (context.User.Identity?.IsAuthenticated == true)
        {
            await auth.LogoutAsync(Caller.From(context.User), request?.AllDevices ?? false, cancellationToken);
            return TypedResults.NoContent();
        }
        if (!string.IsNullOrWhiteSpace(request?.RefreshToken))
        {
            // An expired access token should not stop anyone from signing out.
            await auth.LogoutAsync(request.RefreshToken, request.AllDevices, cancellationToken);
            return TypedResults.NoContent();
        }
        return Problems.Unauthorized("unauthorized", "Send 'Authorization: Bearer <access token>', or {\"refreshToken\": \"...\"} in the body.");
    }

    public static async Task<Ok<MeResponse>> Me(Caller caller, CovibeDb db, CancellationToken cancellationToken)
    {
        var user = await db.Users.AsNoTracking().SingleAsync(u => u.Id == caller.UserId, cancellationToken);
        var team = await db.Teams.AsNoTracking().SingleAsync(t => t.Id == caller.TeamId, cancellationToken);
        return TypedResults.Ok(new MeResponse(user.ToDto(), team.ToDto(), team.OwnerId == user.Id));
    }
}
