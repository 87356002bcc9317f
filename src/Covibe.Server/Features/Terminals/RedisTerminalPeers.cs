using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Cluster;
using Covibe.Terminals;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Covibe.Server.Features.Terminals;

/// <summary>What one node says about its terminals: where it is reached, and each session with its owner's team.</summary>
internal sealed record NodeTerminals(string Node, string Url, NodeTerminal[] Sessions);

internal sealed record NodeTerminal(string? Team, TerminalSessionInfo Info);

[JsonSerializable(typeof(NodeTerminals))]
internal sealed partial class NodeTerminalsJsonContext : JsonSerializerContext;

/// <summary>
/// Terminals across nodes. A terminal's shell runs where it was opened; each node tells the others which sessions it
/// holds and where it is reached (<c>&lt;Channel&gt;:terminals</c>, when they change and again every 10 s; a node not heard
/// from for 35 s is forgotten, one stopping in order says so at once). A client on any node lists those sessions with its
/// own node's, and attaches to and controls them through it: its node connects to the holder on the member's behalf
/// (seed 004's protocol at <c>/terminal</c>, with an access token of the member's own login), so the holder checks each
/// message as it would a client's, and a logout closes that connection as it does every other.
/// </summary>
public sealed class RedisTerminalPeers(
    RedisBus bus,
    TerminalManager terminals,
    TokenService tokens,
    NodeUrl nodeUrl,
    Runners.RunnerHub runners,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<RedisTerminalPeers> logger) : ITerminalPeers, IHostedService, IDisposable
{
    private const string Suffix = "terminals";
    private static readonly TimeSpan Repeat = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Kept = TimeSpan.FromSeconds(35);
    private readonly ConcurrentDictionary<string, (NodeTerminals Table, DateTime At)> _nodes = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task _repeating = Task.CompletedTask;
    private CancellationTokenRegistration _started;

    public event Action<string?>? Changed;

    public IReadOnlyCollection<PeerTerminal> Sessions =>
        [.. Fresh().SelectMany(t => t.Sessions.Select(s => new PeerTerminal(t.Node, s.Team, s.Info)))];

    public PeerTerminal? Find(string id)
    {
        foreach (var table in Fresh())
        {
            if (table.Sessions.FirstOrDefault(s => s.Info.Id == id) is { } session)
            {
                return new PeerTerminal(table.Node, session.Team, session.Info);
            }
        }
        return null;
    }

    /// <summary>A terminal on a runner VM opens on the node its runner is connected to (the PTY is opened through that connection).</summary>
    public async Task<string?> PlaceAsync(TerminalUser user, TerminalConfig? config, CancellationToken cancellationToken) =>
        config?.Vm is { Length: > 0 } vmId && await runners.ConnectedElsewhereAsync(vmId, cancellationToken) is { } node && _nodes.ContainsKey(node) ? node : null;

    public async Task<WebSocket> ConnectAsync(string node, TerminalUser user, CancellationToken cancellationToken)
    {
        if (!_nodes.TryGetValue(node, out var known) || user.TeamId is null || user.Login is null)
        {
            throw new WebSocketException($"No node {node} is known here.");
        }
        var url = new UriBuilder(known.Table.Url) { Path = Terminals.TerminalsFeature.Path };
        url.Scheme = url.Scheme == Uri.UriSchemeHttps ? "wss" : "ws";
        var (token, _) = tokens.CreateAccessToken(user.Id, user.TeamId, user.Name, user.Login);
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(20);
        try
        {
            await socket.ConnectAsync(url.Uri, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        terminals.SessionsChanged += OnChanged;
        // Said once the node listens (its address is known then), and repeated.
        _started = lifetime.ApplicationStarted.Register(() =>
        {
            Publish();
            _repeating = RepeatAsync(_stop.Token);
        });
        return bus.SubscribeAsync(Suffix, Heard);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        terminals.SessionsChanged -= OnChanged;
        await _stop.CancelAsync();
        await _repeating;
        // Its shells end as it stops: the other nodes' lists drop them now rather than in 35 s.
        bus.Publish(Suffix, Encode(new NodeTerminals(bus.Node, "", []))); // no address: leaving
    }

    private void OnChanged(TerminalSession session) => Publish();

    private void Publish()
    {
        if (!lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return; // its address is not known before it listens; said once it does
        }
        var sessions = terminals.Sessions.Select(s => new NodeTerminal(s.Owner.TeamId, s.Info())).ToArray();
        bus.Publish(Suffix, Encode(new NodeTerminals(bus.Node, nodeUrl.Value, sessions)));
    }

    private static byte[] Encode(NodeTerminals table) => JsonSerializer.SerializeToUtf8Bytes(table, NodeTerminalsJsonContext.Default.NodeTerminals);

    private void Heard(RedisValue value)
    {
        NodeTerminals? table;
        try
        {
            table = JsonSerializer.Deserialize((byte[])value!, NodeTerminalsJsonContext.Default.NodeTerminals);
        }
        catch (JsonException e)
        {
            TerminalsLog.BadMessage(logger, e.Message);
            return;
        }
        if (table is null || table.Node == bus.Node)
        {
            return;
        }
        if (table.Url.Length == 0)
        {
            if (_nodes.TryRemove(table.Node, out var left))
            {
                Tell(left.Table, null);
            }
            return;
        }
        var before = _nodes.TryGetValue(table.Node, out var known) ? known.Table : null;
        _nodes[table.Node] = (table, time.GetUtcNow().UtcDateTime);
        if (before is null)
        {
            Publish(); // a node new to us (just started) has not heard ours yet
        }
        if (before is null || !SameSessions(before, table))
        {
            Tell(before, table);
        }
    }

    /// <summary>The same sessions, owners and sharing (activity times and viewer counts change without anyone needing a new list).</summary>
    private static bool SameSessions(NodeTerminals a, NodeTerminals b) =>
        a.Url == b.Url && a.Sessions.Length == b.Sessions.Length
        && a.Sessions.Zip(b.Sessions).All(p => p.First.Info.Id == p.Second.Info.Id && p.First.Info.Shared == p.Second.Info.Shared && p.First.Info.Status == p.Second.Info.Status);

    private void Tell(NodeTerminals? before, NodeTerminals? after)
    {
        var teams = (before?.Sessions ?? []).Concat(after?.Sessions ?? []).Select(s => s.Team).Distinct();
        foreach (var team in teams)
        {
            Changed?.Invoke(team);
        }
    }

    private IEnumerable<NodeTerminals> Fresh()
    {
        var oldest = time.GetUtcNow().UtcDateTime - Kept;
        return _nodes.Values.Where(n => n.At >= oldest).Select(n => n.Table);
    }

    private async Task RepeatAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Repeat, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                Publish();
                var oldest = time.GetUtcNow().UtcDateTime - Kept;
                foreach (var (node, (table, at)) in _nodes)
                {
                    if (at < oldest && _nodes.TryRemove(node, out _))
                    {
                        Tell(table, null);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public void Dispose()
    {
        _started.Dispose();
        _stop.Dispose();
    }
}
