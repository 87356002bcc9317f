using System.Globalization;
using System.Threading.RateLimiting;
using Covibe.Server.Features.Auth;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Http;

/// <summary>
/// Limits login, join and refresh attempts per client address, shared by the REST routes and
/// the hub's <c>join_team</c> so that neither is a way around the other.
/// </summary>
public sealed class AttemptLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter;

    public AttemptLimiter(IOptions<AuthOptions> options)
    {
        var permits = options.Value.AttemptsPerMinute;
        _limiter = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = permits,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
        }));
    }

    /// <summary>Returns null when allowed, else how long to wait.</summary>
    public TimeSpan? TryAttempt(HttpContext context) => TryAttempt(ClientKey(context));

    public TimeSpan? TryAttempt(string clientKey)
    {
        using var lease = _limiter.AttemptAcquire(clientKey);
        if (lease.IsAcquired)
        {
            return null;
        }
        return lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromMinutes(1);
    }

    internal static string ClientKey(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "unknown";

    public void Dispose() => _limiter.Dispose();

    /// <summary>Endpoint filter: 429 with Retry-After and a ProblemDetails body.</summary>
    public static async ValueTask<object?> Filter(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (http.RequestServices.GetRequiredService<AttemptLimiter>().TryAttempt(http) is { } wait)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return Problems.Create(429, "rate-limited", "Too many attempts",
                $"Too many sign-in attempts from your address. Wait {seconds} s and try again.");
        }
        return await next(context);
    }
}
