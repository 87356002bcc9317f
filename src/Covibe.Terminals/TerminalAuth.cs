using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

using Covibe.Web;

namespace Covibe.Terminals;

public sealed record TerminalAuthResult(TerminalUser? User, string? Failure)
{
    public static TerminalAuthResult Refused(string failure) => new(null, failure);
}

/// <summary>Turns a bearer token into a terminal user: <c>covibe serve</c> checks its own sessions; <c>covibe terminald</c> checks the JWT alone.</summary>
public interface ITerminalAuthenticator
{
    Task<TerminalAuthResult> AuthenticateAsync(string token, CancellationToken cancellationToken);
}

/// <summary>
/// terminald's check (seed 004): an HS256 JWT signed with JWT_SECRET (the orchestrator's), not
/// expired (30 s skew), with a <c>sub</c>. <c>name</c> and <c>team</c> are used when present, so
/// tokens from <c>covibe serve</c> work as they are when the secrets match.
/// </summary>
public sealed class JwtTerminalAuthenticator(string secret, TimeProvider time) : ITerminalAuthenticator
{
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly SymmetricSecurityKey _key = new(Encoding.UTF8.GetBytes(secret));

    public async Task<TerminalAuthResult> AuthenticateAsync(string token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(token))
        {
            return TerminalAuthResult.Refused("No token: send 'Authorization: Bearer <JWT>' on the upgrade, or {\"type\":\"auth\",\"token\":\"<JWT>\"} first.");
        }
        var result = await _handler.ValidateTokenAsync(token, HmacJwt.Parameters(_key, time));
        if (!result.IsValid)
        {
            return TerminalAuthResult.Refused(result.Exception is SecurityTokenExpiredException
                ? "The token has expired. Get a new one from the orchestrator."
                : "The token is not valid (signature, algorithm or lifetime). Check that JWT_SECRET matches the orchestrator's.");
        }
        var claims = result.ClaimsIdentity;
        var subject = claims.FindFirst("sub")?.Value;
        if (string.IsNullOrEmpty(subject))
        {
            return TerminalAuthResult.Refused("The token has no 'sub' claim naming the user.");
        }
        return new TerminalAuthResult(new TerminalUser(subject, claims.FindFirst("name")?.Value ?? subject, claims.FindFirst("team")?.Value), null);
    }
}
