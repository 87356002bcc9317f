using System.Globalization;
using Covibe.Server.Features.Cluster;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Covibe.Server.Http;

/// <summary>
/// Rate limits counted in Redis, so they hold across nodes: one counter per (bucket, key, window), <c>INCR</c>ed by
/// whichever node the request reaches and expiring with its window. While Redis is away each node counts alone
/// (<see cref="LocalRateLimits"/>): limits stay, a little looser, rather than refusing everyone.
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
        RedisKey counter = $"{options.Value.KeyPrefix}:rate:{bucket}:{key}:{index.ToString(CultureInfo.InvariantCulture)}";
        try
        {
            var count = await db.StringIncrementAsync(counter);
            _ = db.KeyExpireAsync(counter, window + TimeSpan.FromSeconds(1), ExpireWhen.HasNoExpiry, CommandFlags.FireAndForget);
            return count <= limit ? null : TimeSpan.FromMilliseconds((index + 1) * length - now);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return await alone.TryAcquireAsync(bucket, key, limit, window);
        }
    }
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
