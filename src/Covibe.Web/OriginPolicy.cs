using Microsoft.AspNetCore.Http;

namespace Covibe.Web;

/// <summary>Which browser origins may open a WebSocket: the server's own, and those in ALLOWED_ORIGINS (comma-separated, or <c>*</c>).</summary>
public static class OriginPolicy
{
    public static bool IsAllowed(string allowedOrigins, string origin, HttpRequest request)
    {
        if (Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)
            && string.Equals(uri.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        return allowedOrigins
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Any(allowed => allowed == "*" || string.Equals(allowed.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase));
    }
}
