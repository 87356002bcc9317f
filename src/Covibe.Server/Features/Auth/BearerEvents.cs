using Covibe.Server.Http;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Mvc;

namespace Covibe.Server.Features.Auth;

/// <summary>
/// What Covibe adds to the framework's bearer tokens (<c>JwtBearer</c> checks signature and lifetime): the token's
/// Covibe claims, and its session still live, so logout and member removal take effect on the next request; and every
/// refusal as ProblemDetails that says what to do.
/// </summary>
public sealed class BearerEvents(AuthService auth, IProblemDetailsService problems) : JwtBearerEvents
{
    public const string SchemeName = "Bearer";
    private const string FailureKey = "covibe.auth.failure";

    /// <summary>The token of <c>Authorization: Bearer &lt;token&gt;</c>, or null.</summary>
    public static string? ReadBearer(string header) =>
        header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7 ? header[7..].Trim() : null;

    public override Task AuthenticationFailed(AuthenticationFailedContext context)
    {
        context.HttpContext.Items[FailureKey] = TokenService.Refusal(context.Exception);
        return Task.CompletedTask;
    }

    public override async Task TokenValidated(TokenValidatedContext context)
    {
        var identity = context.Principal?.Identity as System.Security.Claims.ClaimsIdentity;
        if (TokenService.MissingClaims(identity) is { } missing)
        {
            Fail(context, missing);
            return;
        }
        var caller = Caller.From(context.Principal!);
        if (!await auth.IsSessionActiveAsync(caller.SessionId, context.HttpContext.RequestAborted))
        {
            Fail(context, "This login was signed out or the member was removed from the team. Log in again with POST /api/auth/login.");
        }
    }

    public override async Task Challenge(JwtBearerChallengeContext context)
    {
        context.HandleResponse();
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = "Bearer";
        var detail = context.HttpContext.Items[FailureKey] as string
            ?? "Send 'Authorization: Bearer <access token>'. Get a token with POST /api/auth/login (or POST /api/team/create).";
        await WriteProblemAsync(context.HttpContext, 401, "unauthorized", "Not signed in", detail);
    }

    public override Task Forbidden(ForbiddenContext context)
    {
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        return WriteProblemAsync(context.HttpContext, 403, "forbidden", "Not allowed", "Your account may not do this.");
    }

    private static void Fail(TokenValidatedContext context, string reason)
    {
        context.HttpContext.Items[FailureKey] = reason;
        context.Fail(reason);
    }

    private Task WriteProblemAsync(HttpContext http, int status, string type, string title, string detail) =>
        problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = new ProblemDetails { Status = status, Type = Problems.TypeBase + type, Title = title, Detail = detail },
        }).AsTask();
}
