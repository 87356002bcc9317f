using Microsoft.IdentityModel.Tokens;

namespace Covibe.Web;

/// <summary>
/// How Covibe checks an HS256 JWT, in the server and in terminald alike: the algorithm pinned,
/// signed, with an expiry, judged by our own clock (a <see cref="TimeProvider"/>, so tests move
/// time) with 30 s of skew. Issuer and audience are checked when given.
/// </summary>
public static class HmacJwt
{
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    public static TokenValidationParameters Parameters(SymmetricSecurityKey key, TimeProvider time, string? issuer = null, string? audience = null) => new()
    {
        ValidateIssuer = issuer is not null,
        ValidIssuer = issuer,
        ValidateAudience = audience is not null,
        ValidAudience = audience,
        IssuerSigningKey = key,
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ClockSkew = ClockSkew,
        LifetimeValidator = (notBefore, expires, _, _) => IsLive(time, notBefore, expires),
    };

    // The semantics are the library's (expired throws so callers can say so); only the clock is ours.
    private static bool IsLive(TimeProvider time, DateTime? notBefore, DateTime? expires)
    {
        var now = time.GetUtcNow().UtcDateTime;
        if (expires is null || (notBefore is { } nbf && nbf > now + ClockSkew))
        {
            return false;
        }
        if (expires.Value < now - ClockSkew)
        {
            throw new SecurityTokenExpiredException("expired") { Expires = expires.Value };
        }
        return true;
    }
}
