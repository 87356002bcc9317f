using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Covibe.Server.Features.Cluster;

/// <summary>
/// This node's connection to the cluster's Redis, and the one publish/subscribe seam every feature's cluster half uses
/// (channels <see cref="ClusterOptions.Channel"/><c>:suffix</c>), as coder's <c>pubsub</c>: team events and presence
/// (Hub), revocations (Auth), agent output and control (Agents), terminals (Terminals), signals. While Redis is away the
/// node keeps serving its own clients, says so in <c>/health</c> and its log, and catches up by itself when Redis is back
/// (clients catch up by position: the log and the database are the truth).
/// </summary>
public sealed class RedisBus(IOptions<ClusterOptions> options, ThisNode node, ILogger<RedisBus> logger) : IHostedService, IClusterLink, IAsyncDisposable
{
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private ConnectionMultiplexer? _redis;

    /// <summary>Who this node is on the channel (its own events come back to it and are skipped: it delivered them already).</summary>
    public string Node => node.Id;

    public bool Connected => _redis?.IsConnected == true;

    public string State => Connected ? "connected" : "down";

    /// <summary>The database (REDIS_URL's), or null while Redis is away.</summary>
    public IDatabase? Database => _redis is { IsConnected: true } redis ? redis.GetDatabase() : null;

    /// <summary>
    /// Listens on <c>&lt;Channel&gt;:<paramref name="suffix"/></c> (null: the team events' own channel); messages from one
    /// node arrive in the order it sent them, one at a time. Connects first if this is the first use (whichever part starts first).
    /// </summary>
    public async Task SubscribeAsync(string? suffix, Action<RedisValue> handler)
    {
        var redis = await ConnectAsync();
        var queue = await redis.GetSubscriber().SubscribeAsync(ChannelOf(suffix));
        queue.OnMessage(message => handler(message.Message));
    }

    /// <summary>Sends on <c>&lt;Channel&gt;:<paramref name="suffix"/></c> (fire and forget); false while Redis is away.</summary>
    public bool Publish(string? suffix, RedisValue value)
    {
        if (_redis is not { IsConnected: true } redis)
        {
            return false;
        }
        redis.GetSubscriber().Publish(ChannelOf(suffix), value, CommandFlags.FireAndForget);
        return true;
    }

    private RedisChannel ChannelOf(string? suffix) => RedisChannel.Literal(suffix is null ? options.Value.Channel : $"{options.Value.Channel}:{suffix}");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await ConnectAsync();
        ClusterLog.Joined(logger, Node, options.Value.Channel);
    }

    private async Task<ConnectionMultiplexer> ConnectAsync()
    {
        await _connecting.WaitAsync();
        try
        {
            if (_redis is { } connected)
            {
                return connected;
            }
            var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(options.Value.RedisUrl!));
            redis.ConnectionFailed += (_, e) => ClusterLog.RedisDown(logger, e.FailureType.ToString(), e.Exception?.Message ?? "");
            redis.ConnectionRestored += (_, _) => ClusterLog.RedisBack(logger);
            if (!redis.IsConnected)
            {
                ClusterLog.RedisDown(logger, "starting", "not reachable yet; this node serves its own clients meanwhile");
            }
            return _redis = redis;
        }
        finally
        {
            _connecting.Release();
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        _connecting.Dispose();
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }
}
