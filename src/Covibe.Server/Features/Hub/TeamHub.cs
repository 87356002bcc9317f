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
    private int _connections;

    public TeamHub(IDbContextFactory<CovibeDb> dbs, SessionEvents sessions, TimeProvider time, IHostApplicationLifetime lifetime, ILogger<TeamHub> logger)
    {
        _dbs = dbs;
        _time = time;
        _logger = logger;
        sessions.Revoked += CloseSessions;
        // Upgraded connections would otherwise hold a shutdown for Kestrel's whole grace period.
        lifetime.ApplicationStopping.Register(CloseAll);
    }

    /// <summary>Open WebSocket connections, joined or not (the seed's <c>sessions</c> on /health).</summary>
    public int ConnectionCount => Volatile.Read(ref _connections);

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

    /// <summary>Puts the connection in its team's room, unless its member already has <paramref name="maxPerMember"/> there.</summary>
    public bool TryAdd(HubConnection connection, int maxPerMember)
    {
        var member = connection.Member!;
        var room = _rooms.GetOrAdd(member.TeamId, _ => new Room());
        lock (room)
        {
            if (room.Connections.Count(c => c.Member!.UserId == member.UserId) >= maxPerMember)
            {
                return false;
            }
            room.Connections.Add(connection);
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
            if (room.Connections.Remove(connection) && !room.Connections.Any(c => c.Member!.UserId == member.UserId))
            {
                room.LastSeen[member.UserId] = _time.GetUtcNow().UtcDateTime;
            }
        }
    }

    /// <summary>Serializes once and queues the frame to every connection of the team.</summary>
    public void Broadcast<T>(string teamId, T message) where T : HubMessage
    {
        var frame = new Lazy<byte[]>(() => Serialize(message));
        Send(teamId, _ => frame.Value);
    }

    /// <summary>Like <see cref="Broadcast{T}(string, T)"/>, with one variant for <paramref name="ownerId"/> and one for everyone else.</summary>
    public void Broadcast<T>(string teamId, string ownerId, Func<bool, T> build) where T : HubMessage
    {
        var forOwner = new Lazy<byte[]>(() => Serialize(build(true)));
        var forOthers = new Lazy<byte[]>(() => Serialize(build(false)));
        Send(teamId, connection => connection.Member!.UserId == ownerId ? forOwner.Value : forOthers.Value);
    }

    private void Send(string teamId, Func<HubConnection, byte[]> frameFor)
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

    /// <summary>Current status of each member with at least one connection.</summary>
    public IReadOnlyDictionary<string, (string Status, int Connections)> OnlineMembers(string teamId)
    {
        var result = new Dictionary<string, (string, int)>();
        if (!_rooms.TryGetValue(teamId, out var room))
        {
            return result;
        }
        foreach (var group in Snapshot(room).GroupBy(c => c.Member!.UserId))
        {
            var status = group.Any(c => c.Status == PresenceStatuses.Online) ? PresenceStatuses.Online : PresenceStatuses.Away;
            result[group.Key] = (status, group.Count());
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

    private static HubConnection[] Snapshot(Room room)
    {
        lock (room)
        {
            return [.. room.Connections];
        }
    }

    private static Dictionary<string, DateTime> LastSeenSnapshot(Room room)
    {
        lock (room)
        {
            return new Dictionary<string, DateTime>(room.LastSeen);
        }
    }

    private sealed class Room
    {
        public List<HubConnection> Connections { get; } = [];
        public Dictionary<string, DateTime> LastSeen { get; } = [];
    }
}
