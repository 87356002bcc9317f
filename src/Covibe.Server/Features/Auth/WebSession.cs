using Covibe.Protocol;

namespace Covibe.Server.Features.Auth;

/// <summary>
/// The web client keeps its refresh token where scripts cannot read it: in an HttpOnly,
/// SameSite=Strict cookie scoped to <c>/api/auth</c>. A request opts in with the header
/// <c>X-Covibe-Client: web</c> (which a cross-site form cannot send, so the cookie cannot be used
/// by another site); its answers then carry an empty <c>refreshToken</c>.
/// </summary>
public static class WebSession
{
    public const string Header = "X-Covibe-Client";
    public const string CookieName = "covibe_refresh";

    public static bool IsWeb(HttpContext context) => context.Request.Headers[Header] == "web";

    /// <summary>The refresh token from the cookie, for a web client that sent none in the body.</summary>
    public static string? RefreshToken(HttpContext context, string? fromBody) =>
        !string.IsNullOrWhiteSpace(fromBody) ? fromBody : IsWeb(context) ? context.Request.Cookies[CookieName] : null;

    /// <summary>Moves the refresh token from the body into the cookie when the caller is the web client.</summary>
    public static AuthResponse Issue(HttpContext context, AuthResponse auth)
    {
        if (!IsWeb(context))
        {
            return auth;
        }
        context.Response.Cookies.Append(CookieName, auth.RefreshToken, new CookieOptions
        {
            HttpOnly = true,
            Secure = context.Request.IsHttps,
            SameSite = SameSiteMode.Strict,
            Path = "/api/auth",
            Expires = auth.RefreshTokenExpiresAt,
        });
        return auth with { RefreshToken = "" };
    }

    public static void Clear(HttpContext context) =>
        context.Response.Cookies.Delete(CookieName, new CookieOptions { Path = "/api/auth", SameSite = SameSiteMode.Strict, HttpOnly = true, Secure = context.Request.IsHttps });
}
