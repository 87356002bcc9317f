using Covibe.Server.Features.Hub;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Covibe.Server.Features.Cluster;

/// <summary>
/// This node's connection to the cluster's Redis: it tells the other nodes its teams' events (pub/sub on
/// <see cref="ClusterOptions.Channel"/>) and delivers theirs to its own connections. While Redis is away the node keeps
/// serving its own clients, says so in <c>/health</c> and its log, and catches up by itself when Redis is back (clients
/// catch up by position: the log and the database are the truth).
/// </summary>
public sealed class RedisBus(IOptions<ClusterOptions> options, ThisNode node, TeamHub hub, Auth.SessionEvents sessions, TimeProvider time, ILogger<RedisBus> logger)
    : IHostedService, IClusterPresence, IClusterLink, IAsyncDisposable
{
    /// <summary>How often a node repeats its presence, and how long another node's stays without being repeated (it may have died).</summary>
    private static readonly TimeSpan PresenceRepeat = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan PresenceKept = TimeSpan.FromSeconds(35);
    private const string RevokedSuffix = "revoked";
    private const string PresenceSuffix = "presence";
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, System.Collections.Concurrent.ConcurrentDictionary<string, (NodePresence Presence, DateTime At)>> _elsewhere = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _published = new();
    private readonly CancellationTokenSource _stop = new();
    private ConnectionMultiplexer? _redis;
    private Task? _repeating;

    /// <summary>Who this node is on the channel (its own events come back to it and are skipped: it delivered them already).</summary>
    public string Node => node.Id;

    public bool Connected => _redis?.IsConnected == true;

    public string State => Connected ? "connected" : "down";

    /// <summary>The database (REDIS_URL's), or null while Redis is away.</summary>
    public IDatabase? Database => _redis is { IsConnected: true } redis ? redis.GetDatabase() : null;

    /// <summary>
    /// Listens on <c>&lt;Channel&gt;:<paramref name="suffix"/></c> (null: the team events' own channel); messages from one
    /// node arrive in the order it sent them, one at a time. The other cluster parts (agent output, calls between nodes)
    /// subscribe when they start, after this.
    /// </summary>
    public async Task SubscribeAsync(string? suffix, Action<RedisValue> handler)
    {
        var queue = await _redis!.GetSubscriber().SubscribeAsync(ChannelOf(suffix));
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
        var configuration = RedisUrl.Parse(options.Value.RedisUrl!);
        _redis = await ConnectionMultiplexer.ConnectAsync(configuration);
        _redis.ConnectionFailed += (_, e) => ClusterLog.RedisDown(logger, e.FailureType.ToString(), e.Exception?.Message ?? "");
        _redis.ConnectionRestored += (_, _) => ClusterLog.RedisBack(logger);
        if (!_redis.IsConnected)
        {
            ClusterLog.RedisDown(logger, "starting", "not reachable yet; this node serves its own clients meanwhile");
        }
        // Ordered delivery: one team's events from one node arrive in the order they were published.
        await SubscribeAsync(null, Deliver);
        // A logout or a removal on any node closes that login's sockets and terminals on every node.
        await SubscribeAsync(RevokedSuffix, Revoked);
        sessions.RevokedHere += PublishRevoked;
        // Presence: each node tells the others who of each team is connected to it, and repeats it (a node that dies stops).
        await SubscribeAsync(PresenceSuffix, Heard);
        hub.Cluster = this;
        _repeating = RepeatPresenceAsync(_stop.Token);
        ClusterLog.Joined(logger, Node, options.Value.Channel);
    }

    public IReadOnlyDictionary<string, (string Status, int Connections)> Elsewhere(string teamId)
    {
        if (!_elsewhere.TryGetValue(teamId, out var nodes) || nodes.IsEmpty)
        {
            return new Dictionary<string, (string, int)>();
        }
        var oldest = time.GetUtcNow().UtcDateTime - PresenceKept;
        var merged = (IReadOnlyDictionary<string, (string Status, int Connections)>)new Dictionary<string, (string, int)>();
        foreach (var (presence, at) in nodes.Values)
        {
            if (at >= oldest)
            {
                merged = ClusterPresence.Merge(merged, presence.Members);
            }
        }
        return merged;
    }

    public void Changed(string teamId, IReadOnlyDictionary<string, (string Status, int Connections)> here)
    {
        var text = NodePresenceCodec.Encode(new NodePresence(Node, teamId, here));
        if (_published.TryGetValue(teamId, out var last) && last == text)
        {
            return;
        }
        _published[teamId] = text;
        PublishPresence(text);
    }

    private void PublishPresence(string text) => Publish(PresenceSuffix, text);

    private void Heard(RedisValue value)
    {
        if (NodePresenceCodec.Decode(value) is not { } presence || presence.Node == Node)
        {
            return;
        }
        var nodes = _elsewhere.GetOrAdd(presence.TeamId, _ => new());
        var changed = !nodes.TryGetValue(presence.Node, out var before) || NodePresenceCodec.Encode(before.Presence) != NodePresenceCodec.Encode(presence);
        nodes[presence.Node] = (presence, time.GetUtcNow().UtcDateTime);
        if (changed)
        {
            hub.PresenceChanged(presence.TeamId);
        }
    }

    /// <summary>Repeats this node's presence; forgets other nodes' that were not repeated (the team then hears they left).</summary>
    private async Task RepeatPresenceAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(PresenceRepeat, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                foreach (var text in _published.Values)
                {
                    PublishPresence(text);
                }
                var oldest = time.GetUtcNow().UtcDateTime - PresenceKept;
                foreach (var (teamId, nodes) in _elsewhere)
                {
                    foreach (var (node, (_, at)) in nodes)
                    {
                        if (at < oldest && nodes.TryRemove(node, out _))
                        {
                            hub.PresenceChanged(teamId);
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void PublishRevoked(IReadOnlyCollection<string> sessionIds) => Publish(RevokedSuffix, string.Join('\n', sessionIds.Prepend(Node)));

    private void Revoked(RedisValue value)
    {
        var lines = ((string?)value ?? "").Split('\n');
        if (lines.Length > 1 && lines[0] != Node)
        {
            sessions.RevokedElsewhere(lines[1..]);
        }
    }

    /// <summary>Tells the other nodes (fire and forget: a node that misses it catches up by position or on the next event).</summary>
    public void Publish(TeamEventEnvelope envelope) => Publish(null, TeamEventCodec.Encode(envelope));

    private void Deliver(RedisValue value)
    {
        if (TeamEventCodec.Decode((byte[])value!) is not { } e || e.Node == Node)
        {
            return;
        }
        hub.Deliver(e.TeamId, e.OwnerId, e.ForOwner, e.ForOthers);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        sessions.RevokedHere -= PublishRevoked;
        await _stop.CancelAsync();
        if (_repeating is not null)
        {
            await _repeating;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Dispose();
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }
}
