using System.Globalization;
using Covibe.Server.Features.Cluster;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Covibe.Server.Http;

/// <summary>
/// Rate limits counted in Redis, so they hold across nodes: one counter per (bucket, key, window of the clock),
/// <c>INCR</c>ed by whichever node the request reaches, and the previous window's count weighed by how much of it still
/// lies within one window from now (a sliding window): a burst across a window's end counts once, not twice. While Redis is
/// away each node counts alone (<see cref="LocalRateLimits"/>): limits stay, a little looser, rather than refusing everyone.
/// </summary>
public sealed class RedisRateLimits(RedisBus bus, LocalRateLimits alone, IOptions<ClusterOptions> options, TimeProvider time) : IRateLimits
{
    public async ValueTask<TimeSpan?> TryAcquireAsync(string bucket, string key, int limit, TimeSpan window)
    {
        if (bus.Database is not { } db)
        {
            return await alone.TryAcquireAsync(bucket, key, limit, window);
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var length = (long)window.TotalMilliseconds;
        var index = now / length;
        var prefix = $"{options.Value.KeyPrefix}:rate:{bucket}:{key}:";
        RedisKey counter = prefix + index.ToString(CultureInfo.InvariantCulture);
        try
        {
            var count = await db.StringIncrementAsync(counter);
            // Kept through the next window too, where it is the previous one.
            _ = db.KeyExpireAsync(counter, window * 2 + TimeSpan.FromSeconds(1), ExpireWhen.HasNoExpiry, CommandFlags.FireAndForget);
            var previous = (long?)await db.StringGetAsync(prefix + (index - 1).ToString(CultureInfo.InvariantCulture)) ?? 0;
            var left = (index + 1) * length - now;
            return SlidingCount(previous, count, left, length) <= limit ? null : TimeSpan.FromMilliseconds(left);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return await alone.TryAcquireAsync(bucket, key, limit, window);
        }
    }

    /// <summary>
    /// The sliding-window estimate: this window's count, plus the previous window's in proportion to the part of it that is
    /// still within one window from now (<paramref name="left"/> of <paramref name="length"/> milliseconds).
    /// </summary>
    internal static double SlidingCount(long previous, long current, long left, long length) => current + previous * (double)left / length;
}

public static class RateLimitsAcrossNodes
{
    /// <summary>With <c>REDIS_URL</c>: limits counted in Redis across the nodes (each node alone while Redis is away).</summary>
    public static IServiceCollection AddRateLimitsAcrossNodes(this IServiceCollection services)
    {
        services.AddSingleton<LocalRateLimits>();
        services.AddSingleton<IRateLimits, RedisRateLimits>();
        return services;
    }
}
