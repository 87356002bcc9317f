using System.Security.Claims;
using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Covibe.Web;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Auth;

/// <summary>Claims carried by a Covibe access token.</summary>
public static class CovibeClaims
{
    public const string UserId = "sub";
    public const string TeamId = "team";
    public const string SessionId = "sid";
    public const string Name = "name";
}

/// <summary>Issues and checks HS256 access tokens. The algorithm is pinned and clock skew is 30 s.</summary>
public sealed class TokenService
{
    public const string Issuer = "covibe";
    public const string Audience = "covibe";

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly SymmetricSecurityKey _key;
    private readonly TimeProvider _time;
    private readonly AuthOptions _options;

    public TokenService(IOptions<AuthOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        _key = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(_options.JwtSecret!));
    }

    public (string Token, DateTime ExpiresAt) CreateAccessToken(string userId, string teamId, string name, string sessionId)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var expires = now.AddMinutes(_options.AccessTokenMinutes);
        var token = _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = expires,
            Claims = new Dictionary<string, object>
            {
                [CovibeClaims.UserId] = userId,
                [CovibeClaims.TeamId] = teamId,
                [CovibeClaims.SessionId] = sessionId,
                [CovibeClaims.Name] = name,
                ["jti"] = Tokens.NewId(),
            },
            SigningCredentials = new SigningCredentials(_key, SecurityAlgorithms.HmacSha256),
        });
        return (token, expires);
    }

    /// <summary>How an access token is checked: signature (HS256), issuer, audience and lifetime on the server's clock.</summary>
    public TokenValidationParameters Parameters => _parameters ??= CreateParameters();

    private TokenValidationParameters? _parameters;

    private TokenValidationParameters CreateParameters()
    {
        var parameters = HmacJwt.Parameters(_key, _time, Issuer, Audience);
        parameters.NameClaimType = CovibeClaims.Name;
        return parameters;
    }

    /// <summary>Returns the principal, or why the token was refused (in words fit for the user).</summary>
    public async Task<(ClaimsPrincipal? Principal, string? Failure)> ValidateAsync(string token)
    {
        var result = await _handler.ValidateTokenAsync(token, Parameters);
        if (!result.IsValid)
        {
            return (null, Refusal(result.Exception));
        }
        return MissingClaims(result.ClaimsIdentity) is { } missing ? (null, missing) : (new ClaimsPrincipal(result.ClaimsIdentity), null);
    }

    /// <summary>Why a token that failed validation with <paramref name="failure"/> was refused.</summary>
    public static string Refusal(Exception? failure) => failure is SecurityTokenExpiredException
        ? "The access token has expired. Get a new one with POST /api/auth/refresh."
        : "The access token is not valid. Log in again with POST /api/auth/login.";

    /// <summary>Why a validly signed token is still not a Covibe access token, or null when it is one.</summary>
    public static string? MissingClaims(ClaimsIdentity? identity) =>
        identity?.FindFirst(CovibeClaims.UserId) is null || identity.FindFirst(CovibeClaims.TeamId) is null || identity.FindFirst(CovibeClaims.SessionId) is null
            ? "The access token lacks Covibe claims. Log in again with POST /api/auth/login."
            : null;
}
