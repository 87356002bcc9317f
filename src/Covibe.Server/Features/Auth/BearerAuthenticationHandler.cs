using System.Text.Encodings.Web;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Auth;

/// <summary>
/// <c>Authorization: Bearer &lt;access token&gt;</c>. Beyond the signature and lifetime, the token's
/// session must still be live, so logout and member removal take effect on the next request.
/// (JwtBearer does not restore here; this is the small part of it Covibe needs.)
/// </summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    TokenService tokens,
    AuthService auth,
    IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";
    private const string FailureKey = "covibe.auth.failure";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var token = ReadBearer(Request.Headers.Authorization.ToString());
        if (token is null)
        {
            return AuthenticateResult.NoResult();
        }
        var (principal, failure) = await tokens.ValidateAsync(token);
        if (principal is null)
        {
            return Fail(failure!);
        }
        var caller = Caller.From(principal);
        if (!await auth.IsSessionActiveAsync(caller.SessionId, Context.RequestAborted))
        {
            return Fail("This login was signed out or the member was removed from the team. Log in again with POST /api/auth/login.");
        }
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        var detail = Context.Items[FailureKey] as string
            ?? "Send 'Authorization: Bearer <access token>'. Get a token with POST /api/auth/login (or POST /api/team/create).";
        await WriteProblemAsync(401, "unauthorized", "Not signed in", detail);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        return WriteProblemAsync(403, "forbidden", "Not allowed", "Your account may not do this.");
    }

    internal static string? ReadBearer(string header) =>
        header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7 ? header[7..].Trim() : null;

    private AuthenticateResult Fail(string reason)
    {
        Context.Items[FailureKey] = reason;
        return AuthenticateResult.Fail(reason);
    }

    private Task WriteProblemAsync(int status, string type, string title, string detail) =>
        problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = new ProblemDetails { Status = status, Type = Problems.TypeBase + type, Title = title, Detail = detail },
        }).AsTask();
}
