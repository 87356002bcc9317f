using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace Covibe.Server.Http;

/// <summary>
/// Fixed-window limits shared by every node: at most <c>limit</c> acquisitions of (<c>bucket</c>, <c>key</c>) per
/// <c>window</c>. One node keeps them in memory (<see cref="LocalRateLimits"/>); several count in Redis
/// (<see cref="RedisRateLimits"/>), so a client spreading its attempts over the nodes gets no more than on one.
/// Keys are addresses and ids, never secrets.
/// </summary>
public interface IRateLimits
{
    /// <summary>Null when allowed; else how long until the window ends.</summary>
    ValueTask<TimeSpan?> TryAcquireAsync(string bucket, string key, int limit, TimeSpan window);
}

public sealed class LocalRateLimits : IRateLimits, IDisposable
{
    private readonly ConcurrentDictionary<(string Bucket, int Limit, TimeSpan Window), PartitionedRateLimiter<string>> _buckets = new();

    public ValueTask<TimeSpan?> TryAcquireAsync(string bucket, string key, int limit, TimeSpan window)
    {
        var limiter = _buckets.GetOrAdd((bucket, limit, window), b => PartitionedRateLimiter.Create<string, string>(k =>
            RateLimitPartition.GetFixedWindowLimiter(k, _ => new FixedWindowRateLimiterOptions { PermitLimit = b.Limit, Window = b.Window, QueueLimit = 0 })));
        using var lease = limiter.AttemptAcquire(key);
        return ValueTask.FromResult<TimeSpan?>(lease.IsAcquired ? null
            : lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : window);
    }

    public void Dispose()
    {
        foreach (var limiter in _buckets.Values)
        {
            limiter.Dispose();
        }
    }
}
