using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Covibe.Protocol;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Chat;
using Covibe.Server.Http;
using Covibe.Web;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// Reads one connection's messages in order and answers them. A bad message gets an
/// <c>error</c> and the connection stays usable; only a join timeout or a revoked session closes it.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "RunAsync owns the session's lifetime and disposes it on the way out.")]
internal sealed partial class HubSession(HubConnection connection, HubSessions services)
{
    private static readonly string KnownTypes = string.Join(", ",
        HubMessageTypes.JoinTeam, HubMessageTypes.ChatMessage, HubMessageTypes.PresenceUpdate,
        HubMessageTypes.AgentSpawn, HubMessageTypes.AgentControl, HubMessageTypes.AgentSubscribe, HubMessageTypes.AgentUnsubscribe);

    private readonly CancellationTokenSource _session = new();
    private readonly MessageRate _messages = WebSocketText.MessageLimiter(services.Options.MessagesPerSecond);
    // A flood is told once a second, not once per refused message: replies to every one of
    // thousands would fill the connection's own send queue and drop it.
    private long _rateNoticeAt = long.MinValue / 2;
    private int _refusedSinceNotice;
    private CancellationTokenSource? _joinDeadline;

    // The client's acknowledgement id of the request being handled (Socket.IO): its reply goes back as that acknowledgement.
    private long? _ackId;

    /// <summary>
    /// Runs the connection until <paramref name="receive"/> (its transport's reading side, which hands what the client sends to
    /// <see cref="ReceivedAsync"/> or <see cref="EventAsync"/>) ends, then cleans up. <paramref name="authenticated"/>: a
    /// member whose token came with the connection, joined at once.
    /// </summary>
    public async Task RunAsync(Caller? authenticated, Func<CancellationToken, Task> receive, CancellationToken cancellationToken)
    {
        services.Hub.Opened(connection);
        var writer = connection.RunWriterAsync(cancellationToken);
        // Until joined: then the timer goes (an idle joined connection holds no timer of its own).
        _joinDeadline = new CancellationTokenSource(TimeSpan.FromSeconds(services.Options.JoinTimeoutSeconds));
        _joinDeadline.Token.UnsafeRegister(_ =>
        {
            if (connection.Member is null)
            {
                connection.Close(WebSocketCloseStatus.PolicyViolation, "join timeout", TeamHub.Serialize(new ErrorMessage(
                    HubErrorCodes.JoinTimeout, $"Send join_team {{teamId, token}} within {services.Options.JoinTimeoutSeconds} s of connecting.", Fatal: true)));
            }
        }, null);
        try
        {
            if (authenticated is not null)
            {
                await JoinAsync(authenticated, followAgents: false, cancellationToken);
            }
            using var receiving = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, connection.CloseDeadline);
            await receive(receiving.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            // Dropped peer, aborted slow consumer, or server shutdown: clean up below.
        }
        catch (Exception e)
        {
            HubLog.Failed(services.Logger, connection.Id, e);
        }
        finally
        {
            services.Feeds.Started -= OnAgentStarted;
            EndJoinDeadline();
            services.Hub.Remove(connection);
            await _session.CancelAsync();
            await StopSubscriptionsAsync();
            connection.Complete();
            await writer;
            connection.Dispose();
            _session.Dispose();
            services.Hub.Closed(connection);
            if (connection.Overflowed)
            {
                services.Metrics.Dropped(connection);
            }
            if (connection.Member is { } member)
            {
                services.Hub.PresenceChanged(member.TeamId);
            }
        }
    }

    /// <summary>A JSON message from the client (<c>/ws</c>): <c>{"type": ..., ...}</c>.</summary>
    public async Task ReceivedAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (!Admit())
        {
            return;
        }
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(data);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            Error(HubErrorCodes.BadJson, "The message is not valid JSON.");
            return;
        }
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
        {
            Error(HubErrorCodes.InvalidMessage, "Every message is a JSON object with a string 'type', e.g. {\"type\":\"chat_message\",\"message\":\"hi\"}.");
            return;
        }
        await HandleAsync(typeElement.GetString()!, root, cancellationToken);
    }

    /// <summary>
    /// An event from a Socket.IO client: its name is the message's type, its first argument (an object) the message. With
    /// <paramref name="ackId"/>, the reply (or <c>ok</c>) goes back as that acknowledgement. The transport has admitted
    /// the message (<see cref="Admit"/>).
    /// </summary>
    public async Task EventAsync(string type, JsonElement message, long? ackId, CancellationToken cancellationToken)
    {
        _ackId = ackId;
        try
        {
            await HandleAsync(type, message, cancellationToken);
            if (_ackId is { } unanswered)
            {
                connection.TryReply(TeamHub.Serialize(new OkMessage(Truncate(type))), unanswered);
            }
        }
        finally
        {
            _ackId = null;
        }
    }

    /// <summary>
    /// Whether the client may send one more message now (<see cref="HubOptions.MessagesPerSecond"/>); one beyond is not
    /// handled and the client hears so (once a second for a flood, which gets no acknowledgements).
    /// </summary>
    public bool Admit()
    {
        if (_messages.TryTake())
        {
            return true;
        }
        Refused();
        return false;
    }

    /// <summary>Tells the client its message was refused before it could be read (too large, binary, malformed).</summary>
    public void Refuse(string code, string text) => Error(code, text);

    private void EndJoinDeadline()
    {
        Interlocked.Exchange(ref _joinDeadline, null)?.Dispose();
    }

    private void Refused()
    {
        _refusedSinceNotice++;
        var now = Environment.TickCount64;
        if (now - _rateNoticeAt < 1000)
        {
            return;
        }
        Error(HubErrorCodes.RateLimited, _refusedSinceNotice == 1
            ? $"Too many messages: at most {services.Options.MessagesPerSecond} a second. This one was not handled; send it again shortly."
            : $"Too many messages: at most {services.Options.MessagesPerSecond} a second. {_refusedSinceNotice} messages were not handled; send them again shortly.");
        _rateNoticeAt = now;
        _refusedSinceNotice = 0;
    }

    private async Task HandleAsync(string type, JsonElement root, CancellationToken cancellationToken)
    {
        switch (type)
        {
            case HubMessageTypes.JoinTeam:
                if (Read(root, CovibeJsonContext.Default.JoinTeamMessage, type) is { } join)
                {
                    await HandleJoinAsync(join, cancellationToken);
                }
                break;
            case HubMessageTypes.ChatMessage:
                if (Joined(type) is { } sender && Read(root, CovibeJsonContext.Default.SendChatMessage, type) is { } chatMessage)
                {
                    if (ChatService.Check(chatMessage.Message) is { } problem)
                    {
                        Error(HubErrorCodes.InvalidMessage, problem, type);
                        return;
                    }
                    await services.Chat.PostAsync(sender, chatMessage.Message!, chatMessage.ClientId, cancellationToken);
                }
                break;
            case HubMessageTypes.AgentSpawn:
                if (Joined(type) is { } spawner && Read(root, CovibeJsonContext.Default.AgentSpawnMessage, type) is { } spawn)
                {
                    var spawned = await services.Agents.SpawnAsync(spawner, new SpawnAgentRequest(spawn.Task, spawn.AgentType, spawn.RepositoryUrl, spawn.Branch, VmId: spawn.VmId, BoxId: spawn.BoxId,
                        BaseBranch: spawn.BaseBranch, TeamRepository: spawn.TeamRepository, PermissionMode: spawn.PermissionMode), cancellationToken);
                    if (spawned.Agent is { } agent)
                    {
                        Reply(TeamHub.Serialize(new AgentSpawnedMessage(agent, spawn.ClientId)));
                    }
                    else
                    {
                        AgentError(spawned, type);
                    }
                }
                break;
            case HubMessageTypes.AgentControl:
                if (Joined(type) is { } controller && Read(root, CovibeJsonContext.Default.AgentControlMessage, type) is { } control)
                {
                    await ControlAsync(controller, control, cancellationToken);
                }
                break;
            case HubMessageTypes.AgentSubscribe:
                if (Joined(type) is { } subscriber && Read(root, CovibeJsonContext.Default.AgentSubscribeMessage, type) is { } subscribe)
                {
                    if (subscribe.From is < 0)
                    {
                        Error(HubErrorCodes.InvalidMessage, "'from' must be 0 or more: a position from an earlier agent_output's 'next'.", type);
                    }
                    else if (string.IsNullOrEmpty(subscribe.AgentId) || await services.Agents.FindForReadingAsync(subscriber, subscribe.AgentId, cancellationToken) is null)
                    {
                        Error(HubErrorCodes.NotFound, $"Your team has no agent '{subscribe.AgentId}'.", type);
                    }
                    else
                    {
                        Subscribe(subscribe.AgentId, subscribe.From ?? 0, replace: true);
                    }
                }
                break;
            case HubMessageTypes.AgentUnsubscribe:
                if (Joined(type) is not null && Read(root, CovibeJsonContext.Default.AgentUnsubscribeMessage, type) is { AgentId: { } unsubscribeId })
                {
                    await UnsubscribeAsync(unsubscribeId);
                }
                break;
            case HubMessageTypes.PresenceUpdate:
                if (Joined(type) is { } member && Read(root, CovibeJsonContext.Default.PresenceUpdateMessage, type) is { } presence)
                {
                    if (presence.Status is not (PresenceStatuses.Online or PresenceStatuses.Away))
                    {
                        Error(HubErrorCodes.InvalidMessage, "'status' must be 'online' or 'away' (offline is what disconnecting means).", type);
                        return;
                    }
                    services.Hub.SetStatus(connection, presence.Status);
                    services.Hub.PresenceChanged(member.TeamId);
                }
                break;
            default:
                Error(HubErrorCodes.UnknownType, $"Unknown message type '{Truncate(type)}'. This server understands: {KnownTypes}.", Truncate(type));
                break;
        }
    }

    private async Task HandleJoinAsync(JoinTeamMessage join, CancellationToken cancellationToken)
    {
        if (connection.Member is { } current)
        {
            if (join.TeamId is null || join.TeamId == current.TeamId)
            {
                await JoinAsync(current, join.FollowAgents ?? true, cancellationToken);
            }
            else
            {
                Error(HubErrorCodes.Forbidden, "This connection has already joined another team; open a new connection for it.", HubMessageTypes.JoinTeam);
            }
            return;
        }
        var (caller, code, failure) = await AuthenticateAsync(join.TeamId, join.Token, cancellationToken);
        if (caller is null)
        {
            Error(code!, failure!, HubMessageTypes.JoinTeam);
            return;
        }
        await JoinAsync(caller, join.FollowAgents ?? true, cancellationToken);
    }

    /// <summary>The member a token names, if it may join <paramref name="teamId"/> (null: its own team), or why not (a code and words).</summary>
    internal async Task<(Caller? Caller, string? Code, string? Error)> AuthenticateAsync(string? teamId, string? token, CancellationToken cancellationToken)
    {
        if (await services.Limiter.TryAttemptAsync(connection.RemoteAddress) is { } wait)
        {
            return (null, HubErrorCodes.RateLimited, $"Too many join attempts from your address. Wait {Math.Ceiling(wait.TotalSeconds)} s.");
        }
        if (string.IsNullOrEmpty(token))
        {
            return (null, HubErrorCodes.InvalidMessage, "join_team needs 'token': the access token from POST /api/auth/login.");
        }
        var (principal, failure) = await services.Tokens.ValidateAsync(token);
        if (principal is null)
        {
            return (null, HubErrorCodes.AuthFailed, failure!);
        }
        var caller = Caller.From(principal);
        if (!await services.Auth.IsSessionActiveAsync(caller.SessionId, cancellationToken))
        {
            return (null, HubErrorCodes.AuthFailed, "This login was signed out or the member was removed. Log in again with POST /api/auth/login.");
        }
        if (teamId is not null && teamId != caller.TeamId)
        {
            return (null, HubErrorCodes.Forbidden, "The token is for a different team than 'teamId'. You can only join your own team.");
        }
        return (caller, null, null);
    }

    /// <summary>Joins the team room; with <paramref name="followAgents"/>, also every team agent's live output (seed 001).</summary>
    internal async Task JoinAsync(Caller caller, bool followAgents, CancellationToken cancellationToken)
    {
        var joined = TeamHub.Serialize(new TeamJoinedMessage(caller.TeamId, caller.UserId, caller.Name));
        var ackId = _ackId;
        _ackId = null;
        if (connection.Member is null)
        {
            connection.Join(caller);
            EndJoinDeadline();
            // team_joined goes out as the connection enters the room: nothing broadcast to the room comes first,
            // and once a client has it the member is present (GET /api/team says online).
            if (!services.Hub.TryAdd(connection, services.Options.MaxConnectionsPerMember, first: () => connection.TryReply(joined, ackId)))
            {
                HubLog.TooManyConnections(services.Logger, connection.Id, caller.UserId, services.Options.MaxConnectionsPerMember);
                connection.Close(WebSocketCloseStatus.PolicyViolation, "too many connections", TeamHub.Serialize(new ErrorMessage(HubErrorCodes.TooManyConnections,
                    $"You already have {services.Options.MaxConnectionsPerMember} connections open (tabs and devices). Close one, then connect again.", Fatal: true)));
                return;
            }
            HubLog.Joined(services.Logger, connection.Id, caller.TeamId, caller.UserId);
        }
        else
        {
            connection.TryReply(joined, ackId);
        }
        if (followAgents)
        {
            services.Feeds.Started -= OnAgentStarted;
            services.Feeds.Started += OnAgentStarted;
            foreach (var feed in services.Feeds.OfTeam(caller.TeamId))
            {
                Subscribe(feed.AgentId, from: null, replace: false);
            }
        }
        // The joiner sees the team at once; the others hear of it only if a person's state changed.
        connection.TrySend(TeamHub.Serialize(await services.Hub.PresenceAsync(caller.TeamId, cancellationToken)));
        services.Hub.PresenceChanged(caller.TeamId);
    }

    private Caller? Joined(string type)
    {
        if (connection.Member is null)
        {
            Error(HubErrorCodes.NotJoined, "Send join_team {teamId, token} first.", type);
        }
        return connection.Member;
    }

    private T? Read<T>(JsonElement root, JsonTypeInfo<T> typeInfo, string type) where T : class
    {
        try
        {
            return root.Deserialize(typeInfo);
        }
        catch (JsonException e)
        {
            Error(HubErrorCodes.InvalidMessage, $"The {type} message has a field of the wrong kind ({e.Path}). See docs/protocol.md.", type);
            return null;
        }
    }

    /// <summary>An error; one about the request being handled (<paramref name="requestType"/>) is its reply.</summary>
    private void Error(string code, string text, string? requestType = null)
    {
        HubLog.BadMessage(services.Logger, connection.Id, code);
        var frame = TeamHub.Serialize(new ErrorMessage(code, text, requestType));
        if (requestType is null)
        {
            connection.TrySend(frame);
        }
        else
        {
            Reply(frame);
        }
    }

    /// <summary>Answers the request being handled: as its acknowledgement when the client asked for one (Socket.IO).</summary>
    private void Reply(byte[] frame)
    {
        var ackId = _ackId;
        _ackId = null;
        connection.TryReply(frame, ackId);
    }

    private static string Truncate(string value) => value.Length <= 64 ? value : value[..64];
}
