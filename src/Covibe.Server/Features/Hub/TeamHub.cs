using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// The joined connections of every team on this server, and presence derived from them:
/// a member is online if any of their tabs or devices is online, away if all are away,
/// offline if none is connected.
/// </summary>
public sealed class TeamHub
{
    private readonly ConcurrentDictionary<string, Room> _rooms = new();
    private readonly ConcurrentDictionary<string, HubConnection> _open = new();
    private readonly ConcurrentDictionary<string, string> _lastPresence = new();
    private readonly System.Threading.Channels.Channel<string> _presenceChanges = System.Threading.Channels.Channel.CreateUnbounded<string>();
    private readonly IDbContextFactory<CovibeDb> _dbs;
    private readonly TimeProvider _time;
    private readonly ILogger<TeamHub> _logger;
    private readonly IClusterPresence _cluster;
    private int _connections;

    public TeamHub(IDbContextFactory<CovibeDb> dbs, SessionEvents sessions, IClusterPresence cluster, TimeProvider time, IHostApplicationLifetime lifetime,
        ILogger<TeamHub> logger)
    {
        _dbs = dbs;
        _time = time;
        _logger = logger;
        _cluster = cluster;
        cluster.ElsewhereChanged += PresenceChanged;
        sessions.Revoked += CloseSessions;
        // Upgraded connections would otherwise hold a shutdown for Kestrel's whole grace period.
        lifetime.ApplicationStopping.Register(CloseAll);
    }

    /// <summary>Open WebSocket connections, joined or not (the seed's <c>sessions</c> on /health).</summary>
    public int ConnectionCount => Volatile.Read(ref _connections);

    /// <summary>The open connections, at this moment.</summary>
    internal ICollection<HubConnection> Open => _open.Values;

    internal void Opened(HubConnection connection)
    {
        _open[connection.Id] = connection;
        Interlocked.Increment(ref _connections);
    }

    internal void Closed(HubConnection connection)
    {
        _open.TryRemove(connection.Id, out _);
        Interlocked.Decrement(ref _connections);
    }

    private void CloseAll()
    {
        foreach (var connection in _open.Values)
        {
            connection.Close(WebSocketCloseStatus.EndpointUnavailable, "server shutting down");
        }
    }

    /// <summary>
    /// Adds the joined connection to its team's room (false: the member has <paramref name="maxPerMember"/> already).
    /// <paramref name="first"/> queues its first frame under the room's lock, before it is counted: it arrives before anything
    /// broadcast to the room, and by the time it arrives the member counts as present.
    /// </summary>
    public bool TryAdd(HubConnection connection, int maxPerMember, Action? first = null)
    {
        var member = connection.Member!;
        var room = _rooms.GetOrAdd(member.TeamId, _ => new Room());
        lock (room)
        {
            var tabs = room.Members.GetValueOrDefault(member.UserId);
            if (tabs.Connections >= maxPerMember || room.Connections.Contains(connection))
            {
                return false;
            }
            first?.Invoke();
            room.Connections.Add(connection);
            room.Members[member.UserId] = tabs with
            {
                Connections = tabs.Connections + 1,
                Online = tabs.Online + (connection.Status == PresenceStatuses.Online ? 1 : 0),
            };
            room.Snapshot = null;
            return true;
        }
    }

    public void Remove(HubConnection connection)
    {
        if (connection.Member is not { } member || !_rooms.TryGetValue(member.TeamId, out var room))
        {
            return;
        }
        lock (room)
        {
            if (!room.Connections.Remove(connection))
            {
                return;
            }
            room.Snapshot = null;
            var tabs = room.Members[member.UserId];
            if (tabs.Connections == 1)
            {
                room.Members.Remove(member.UserId);
                room.LastSeen[member.UserId] = _time.GetUtcNow().UtcDateTime;
            }
            else
            {
                room.Members[member.UserId] = new Tabs(tabs.Connections - 1, tabs.Online - (connection.Status == PresenceStatuses.Online ? 1 : 0));
            }
        }
    }

    /// <summary>Records a tab's or device's <c>online</c>/<c>away</c> (then call <see cref="PresenceChanged"/>).</summary>
    public void SetStatus(HubConnection connection, string status)
    {
        var room = connection.Member is { } member ? _rooms.GetValueOrDefault(member.TeamId) : null;
        if (room is null)
        {
            connection.Status = status;
            return;
        }
        lock (room)
        {
            var was = connection.Status == PresenceStatuses.Online ? 1 : 0;
            connection.Status = status;
            if (room.Connections.Contains(connection))
            {
                var tabs = room.Members[connection.Member!.UserId];
                room.Members[connection.Member.UserId] = tabs with { Online = tabs.Online - was + (status == PresenceStatuses.Online ? 1 : 0) };
            }
        }
    }

    /// <summary>Serializes once and queues the frame to every connection of the team.</summary>
    public void Broadcast<T>(string teamId, T message) where T : HubMessage
    {
        var frame = new HubBroadcast(() => Serialize(message));
        Send(teamId, _ => frame);
    }

    /// <summary>
    /// Like <see cref="Broadcast{T}(string, T)"/>, with one variant for the members in <paramref name="who"/> (<c>*</c>: everyone),
    /// e.g. those who control an agent, and one for everyone else.
    /// </summary>
    public void Broadcast<T>(string teamId, IReadOnlyCollection<string> who, Func<bool, T> build) where T : HubMessage
    {
        var forThem = new HubBroadcast(() => Serialize(build(true)));
        var forOthers = new HubBroadcast(() => Serialize(build(false)));
        Send(teamId, connection => Includes(who, connection.Member!.UserId) ? forThem : forOthers);
    }

    /// <summary>Frames made elsewhere (another node's event): <paramref name="forThem"/> to the connections of <paramref name="who"/>, <paramref name="forOthers"/> to the rest.</summary>
    public void Deliver(string teamId, IReadOnlyCollection<string> who, byte[] forThem, byte[] forOthers)
    {
        var them = new HubBroadcast(forThem);
        var others = new HubBroadcast(forOthers);
        Send(teamId, connection => Includes(who, connection.Member!.UserId) ? them : others);
    }

    private static bool Includes(IReadOnlyCollection<string> who, string userId) => who.Count > 0 && (who.Contains(userId) || who.Contains("*"));

    private void Send(string teamId, Func<HubConnection, HubBroadcast> frameFor)
    {
        if (!_rooms.TryGetValue(teamId, out var room))
        {
            return;
        }
        foreach (var connection in Snapshot(room))
        {
            if (!connection.TrySend(frameFor(connection)))
            {
                HubLog.SlowConsumer(_logger, connection.Id, connection.Member!.UserId);
            }
        }
    }

    /// <summary>
    /// With several nodes, who of a team is online on the others (and where this node tells them its own); on one node,
    /// nobody elsewhere. Set once at start-up.
    /// </summary>

    /// <summary>Current status of each member with at least one connection, on this node or (several nodes) another.</summary>
    public IReadOnlyDictionary<string, (string Status, int Connections)> OnlineMembers(string teamId) =>
        ClusterPresence.Merge(LocalMembers(teamId), _cluster.Elsewhere(teamId));

    /// <summary>Current status of each member with at least one connection to this node.</summary>
    public IReadOnlyDictionary<string, (string Status, int Connections)> LocalMembers(string teamId)
    {
        var result = new Dictionary<string, (string, int)>();
        if (!_rooms.TryGetValue(teamId, out var room))
        {
            return result;
        }
        lock (room)
        {
            foreach (var (userId, tabs) in room.Members)
            {
                result[userId] = (tabs.Online > 0 ? PresenceStatuses.Online : PresenceStatuses.Away, tabs.Connections);
            }
        }
        return result;
    }

    /// <summary>Every current member of the team with their status (seed 001's <c>team_presence {users}</c>).</summary>
    public async Task<TeamPresenceMessage> PresenceAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        var members = await db.Users
            .Where(u => u.TeamId == teamId && u.RemovedAt == null)
            .OrderBy(u => u.Name)
            .Select(u => new { u.Id, u.Name })
            .ToListAsync(cancellationToken);
        var online = OnlineMembers(teamId);
        var lastSeen = _rooms.TryGetValue(teamId, out var room) ? LastSeenSnapshot(room) : [];
        return new TeamPresenceMessage([.. members.Select(m => online.TryGetValue(m.Id, out var o)
            ? new PresenceEntry(m.Id, m.Name, o.Status, o.Connections, null)
            : new PresenceEntry(m.Id, m.Name, PresenceStatuses.Offline, 0, lastSeen.GetValueOrDefault(m.Id)))]);
    }

    /// <summary>
    /// Something about the team's presence may have changed: <see cref="PresenceBroadcaster"/> sends one
    /// <c>team_presence</c> for a burst of these, and only if a person's state changed (a member
    /// online, away or offline, joined or removed), not each socket's: 2,000 tabs of one member are
    /// one change, not 2,000 broadcasts to 2,000 sockets.
    /// </summary>
    public void PresenceChanged(string teamId) => _presenceChanges.Writer.TryWrite(teamId);

    internal System.Threading.Channels.ChannelReader<string> PresenceChanges => _presenceChanges.Reader;

    /// <summary>Broadcasts the team's presence if a person's state differs from the last broadcast.</summary>
    internal async Task PublishPresenceAsync(string teamId, CancellationToken cancellationToken)
    {
        _cluster.Changed(teamId, LocalMembers(teamId));
        var presence = await PresenceAsync(teamId, cancellationToken);
        var people = string.Join(';', presence.Users.Select(u => $"{u.UserId}={u.Status}"));
        if (_lastPresence.TryGetValue(teamId, out var last) && last == people)
        {
            return;
        }
        _lastPresence[teamId] = people;
        Broadcast(teamId, presence);
    }

    internal static byte[] Serialize<T>(T message) where T : HubMessage => HubJson.Serialize(message);

    private void CloseSessions(IReadOnlyCollection<string> sessionIds)
    {
        var frame = Serialize(new ErrorMessage(HubErrorCodes.SessionRevoked, "Your login was signed out or you were removed from the team.", Fatal: true));
        foreach (var room in _rooms.Values)
        {
            foreach (var connection in Snapshot(room).Where(c => sessionIds.Contains(c.Member!.SessionId)))
            {
                HubLog.ClosedRevoked(_logger, connection.Id, connection.Member!.UserId);
                connection.Close(WebSocketCloseStatus.PolicyViolation, "session revoked", frame);
            }
        }
    }

    /// <summary>The room's connections, copied once per change (not once per broadcast).</summary>
    private static HubConnection[] Snapshot(Room room)
    {
        lock (room)
        {
            return room.Snapshot ??= [.. room.Connections];
        }
    }

    private static Dictionary<string, DateTime> LastSeenSnapshot(Room room)
    {
        lock (room)
        {
            return new Dictionary<string, DateTime>(room.LastSeen);
        }
    }

    /// <summary>A team's joined connections, with each member's count kept as they come and go (presence is never a scan).</summary>
    private sealed class Room
    {
        public HashSet<HubConnection> Connections { get; } = [];
        public Dictionary<string, Tabs> Members { get; } = [];
        public Dictionary<string, DateTime> LastSeen { get; } = [];
        public HubConnection[]? Snapshot { get; set; }
    }

    /// <summary>One member's connections in a room, and how many of them are online (not away).</summary>
    private readonly record struct Tabs(int Connections, int Online);
}
