using System.Globalization;
using Covibe.Server.Http;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Auth;

/// <summary>
/// Limits login, join and refresh attempts per client address, shared by the REST routes and
/// the hub's <c>join_team</c> so that neither is a way around the other.
/// </summary>
public sealed class AttemptLimiter(IRateLimits limits, IOptions<AuthOptions> options)
{
    /// <summary>Returns null when allowed, else how long to wait.</summary>
    public ValueTask<TimeSpan?> TryAttemptAsync(HttpContext context) => TryAttemptAsync(ClientKey(context));

    public ValueTask<TimeSpan?> TryAttemptAsync(string clientKey) =>
        limits.TryAcquireAsync("sign-in", clientKey, options.Value.AttemptsPerMinute, TimeSpan.FromMinutes(1));

    internal static string ClientKey(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
}

/// <summary>The sign-in limit on a route (<c>.AddEndpointFilter&lt;AttemptFilter&gt;()</c>): 429 with Retry-After and a ProblemDetails body.</summary>
public sealed class AttemptFilter(AttemptLimiter limiter) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (await limiter.TryAttemptAsync(http) is { } wait)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return Problems.Create(429, "rate-limited", "Too many attempts",
                $"Too many sign-in attempts from your address. Wait {seconds} s and try again.");
        }
        return await next(context);
    }
}
