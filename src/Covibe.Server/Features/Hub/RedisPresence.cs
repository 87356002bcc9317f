using System.Collections.Concurrent;
using Covibe.Server.Features.Cluster;
using StackExchange.Redis;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// Presence across nodes over Redis: each node tells the others who of each team is connected to it (on change, and
/// every <see cref="Repeat"/>), and forgets a node not heard for <see cref="Kept"/> (it may have died).
/// </summary>
public sealed class RedisPresence(RedisBus bus, TimeProvider time) : IClusterPresence, IHostedService, IDisposable
{
    private static readonly TimeSpan Repeat = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Kept = TimeSpan.FromSeconds(35);
    private const string Suffix = "presence";
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, (NodePresence Presence, DateTime At)>> _elsewhere = new();
    private readonly ConcurrentDictionary<string, string> _published = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _repeating;

    public event Action<string>? ElsewhereChanged;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await bus.SubscribeAsync(Suffix, Heard);
        _repeating = RepeatAsync(_stop.Token);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync();
        if (_repeating is not null)
        {
            await _repeating;
        }
    }

    public void Dispose() => _stop.Dispose();

    public IReadOnlyDictionary<string, (string Status, int Connections)> Elsewhere(string teamId)
    {
        if (!_elsewhere.TryGetValue(teamId, out var nodes) || nodes.IsEmpty)
        {
            return new Dictionary<string, (string, int)>();
        }
        var oldest = time.GetUtcNow().UtcDateTime - Kept;
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
        var text = NodePresenceCodec.Encode(new NodePresence(bus.Node, teamId, here));
        if (_published.TryGetValue(teamId, out var last) && last == text)
        {
            return;
        }
        _published[teamId] = text;
        bus.Publish(Suffix, text);
    }

    private void Heard(RedisValue value)
    {
        if (NodePresenceCodec.Decode(value) is not { } presence || presence.Node == bus.Node)
        {
            return;
        }
        var nodes = _elsewhere.GetOrAdd(presence.TeamId, _ => new());
        var changed = !nodes.TryGetValue(presence.Node, out var before) || NodePresenceCodec.Encode(before.Presence) != NodePresenceCodec.Encode(presence);
        nodes[presence.Node] = (presence, time.GetUtcNow().UtcDateTime);
        if (changed)
        {
            ElsewhereChanged?.Invoke(presence.TeamId);
        }
    }

    /// <summary>Repeats this node's presence; forgets other nodes' that were not repeated (the team then hears they left).</summary>
    private async Task RepeatAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Repeat, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                foreach (var text in _published.Values)
                {
                    bus.Publish(Suffix, text);
                }
                var oldest = time.GetUtcNow().UtcDateTime - Kept;
                foreach (var (teamId, nodes) in _elsewhere)
                {
                    foreach (var (node, (_, at)) in nodes)
                    {
                        if (at < oldest && nodes.TryRemove(node, out _))
                        {
                            ElsewhereChanged?.Invoke(teamId);
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
