using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Chat;
using Covibe.Server.Http;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// Reads one connection's messages in order and answers them. A bad message gets an
/// <c>error</c> and the connection stays usable; only a join timeout or a revoked session closes it.
/// </summary>
internal sealed class HubSession(
    HubConnection connection,
    TeamHub hub,
    TokenService tokens,
    AuthService auth,
    ChatService chat,
    AttemptLimiter limiter,
    HubOptions options,
    ILogger logger)
{
    private static readonly string KnownTypes = string.Join(", ", HubMessageTypes.JoinTeam, HubMessageTypes.ChatMessage, HubMessageTypes.PresenceUpdate);

    public async Task RunAsync(Caller? authenticated, CancellationToken cancellationToken)
    {
        hub.Opened();
        var writer = connection.RunWriterAsync(cancellationToken);
        using var joinDeadline = new CancellationTokenSource(TimeSpan.FromSeconds(options.JoinTimeoutSeconds));
        await using var onDeadline = joinDeadline.Token.Register(() =>
        {
            if (connection.Member is null)
            {
                connection.Close(WebSocketCloseStatus.PolicyViolation, "join timeout", TeamHub.Serialize(new ErrorMessage(
                    HubErrorCodes.JoinTimeout, $"Send join_team {{teamId, token}} within {options.JoinTimeoutSeconds} s of connecting.", Fatal: true)));
            }
        });
        try
        {
            if (authenticated is not null)
            {
                await JoinAsync(authenticated, cancellationToken);
            }
            await ReceiveLoopAsync(cancellationToken);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // Dropped peer, aborted slow consumer, or server shutdown: clean up below.
        }
        catch (Exception e)
        {
            HubLog.Failed(logger, connection.Id, e);
        }
        finally
        {
            hub.Remove(connection);
            connection.Complete();
            await writer;
            hub.Closed();
            if (connection.Member is { } member)
            {
                await hub.BroadcastPresenceAsync(member.TeamId, CancellationToken.None);
            }
        }
    }

    private async Task ReceiveLoopAsync(CancellationToken cancellationToken)
    {
        var socket = connection.Socket;
        var buffer = new byte[options.MaxMessageBytes];
        var scratch = new byte[4096];
        while (socket.State == WebSocketState.Open)
        {
            var count = 0;
            var tooLarge = false;
            ValueWebSocketReceiveResult result;
            do
            {
                var room = count < buffer.Length;
                result = await socket.ReceiveAsync(room ? buffer.AsMemory(count) : scratch.AsMemory(), cancellationToken);
                if (room)
                {
                    count += result.Count;
                }
                else if (result.Count > 0)
                {
                    tooLarge = true;
                }
            }
            while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);

            if (result.MessageType == WebSocketMessageType.Close)
            {
                connection.Close(WebSocketCloseStatus.NormalClosure, "bye");
                return;
            }
            if (tooLarge)
            {
                Error(HubErrorCodes.MessageTooLarge, $"Messages are limited to {options.MaxMessageBytes} bytes.");
            }
            else if (result.MessageType == WebSocketMessageType.Binary)
            {
                Error(HubErrorCodes.BinaryNotSupported, "Send JSON as text frames.");
            }
            else
            {
                await HandleAsync(buffer.AsMemory(0, count), cancellationToken);
            }
        }
    }

    private async Task HandleAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
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
        var type = typeElement.GetString()!;
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
                    await chat.PostAsync(sender, chatMessage.Message!, chatMessage.ClientId, cancellationToken);
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
                    connection.Status = presence.Status;
                    await hub.BroadcastPresenceAsync(member.TeamId, cancellationToken);
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
                await JoinAsync(current, cancellationToken);
            }
            else
            {
                Error(HubErrorCodes.Forbidden, "This connection has already joined another team; open a new connection for it.", HubMessageTypes.JoinTeam);
            }
            return;
        }
        if (limiter.TryAttempt(connection.RemoteAddress) is { } wait)
        {
            Error(HubErrorCodes.RateLimited, $"Too many join attempts from your address. Wait {Math.Ceiling(wait.TotalSeconds)} s.", HubMessageTypes.JoinTeam);
            return;
        }
        if (string.IsNullOrEmpty(join.Token))
        {
            Error(HubErrorCodes.InvalidMessage, "join_team needs 'token': the access token from POST /api/auth/login.", HubMessageTypes.JoinTeam);
            return;
        }
        var (principal, failure) = await tokens.ValidateAsync(join.Token);
        if (principal is null)
        {
            Error(HubErrorCodes.AuthFailed, failure!, HubMessageTypes.JoinTeam);
            return;
        }
        var caller = Caller.From(principal);
        if (!await auth.IsSessionActiveAsync(caller.SessionId, cancellationToken))
        {
            Error(HubErrorCodes.AuthFailed, "This login was signed out or the member was removed. Log in again with POST /api/auth/login.", HubMessageTypes.JoinTeam);
            return;
        }
        if (join.TeamId is not null && join.TeamId != caller.TeamId)
        {
            Error(HubErrorCodes.Forbidden, "The token is for a different team than 'teamId'. You can only join your own team.", HubMessageTypes.JoinTeam);
            return;
        }
        await JoinAsync(caller, cancellationToken);
    }

    private async Task JoinAsync(Caller caller, CancellationToken cancellationToken)
    {
        if (connection.Member is null)
        {
            connection.Join(caller);
            hub.Add(connection);
            HubLog.Joined(logger, connection.Id, caller.TeamId, caller.UserId);
        }
        connection.TrySend(TeamHub.Serialize(new TeamJoinedMessage(caller.TeamId, caller.UserId, caller.Name)));
        await hub.BroadcastPresenceAsync(caller.TeamId, cancellationToken);
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

    private void Error(string code, string text, string? requestType = null)
    {
        HubLog.BadMessage(logger, connection.Id, code);
        connection.TrySend(TeamHub.Serialize(new ErrorMessage(code, text, requestType)));
    }

    private static string Truncate(string value) => value.Length <= 64 ? value : value[..64];
}
