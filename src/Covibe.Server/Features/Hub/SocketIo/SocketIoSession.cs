using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Web;

namespace Covibe.Server.Features.Hub.SocketIo;

/// <summary>
/// A Socket.IO client of the hub: its Engine.IO session (the transport), and its hub session (the event core shared with
/// <c>/ws</c>). Packets from whichever transport carries them are read here one at a time, in order; Socket.IO events
/// become hub messages (the event's name is the type, its first argument the message) and hub frames become events.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "The hub session's RunAsync disposes the connection; the semaphore is only awaited (it never makes a wait handle).")]
internal sealed class SocketIoSession
{
    /// <summary>The message of an event sent without one (<c>42["presence_update"]</c>), made once.</summary>
    private static readonly JsonElement EmptyObject = JsonElement.Parse("{}");

    private readonly SemaphoreSlim _reading = new(1, 1);
    private readonly HubSession _hub;
    private readonly HubConnection _connection;
    private readonly HubOptions _options;
    private readonly Caller? _authenticated;
    private bool _connected;
    // Binary attachments announced by a refused binary packet, still to come: skipped, not refused again.
    private int _attachmentsToSkip;

    public SocketIoSession(EngineSession engine, HubSessions sessions, Caller? authenticated)
    {
        Engine = engine;
        _options = sessions.Options;
        _authenticated = authenticated;
        _connection = new HubConnection(new Outbox(engine, new OutboxOptions(_options.SendQueueCapacity, _options.StreamBufferBytes)), engine.RemoteAddress, HubWire.SocketIo);
        _hub = sessions.Create(_connection);
        engine.PingRequested += () => _connection.TrySendPacket(SocketIoCodec.Ping);
    }

    public EngineSession Engine { get; }

    /// <summary>The connection's id (in logs; never the session id, which is a capability).</summary>
    public string Id => _connection.Id;

    /// <summary>The hub session, running until the Engine.IO session ends and it has cleaned up.</summary>
    public Task Running { get; private set; } = Task.CompletedTask;

    /// <summary>Starts the hub session; <paramref name="open"/> is the first packet the client gets.</summary>
    public void Start(byte[] open, CancellationToken stopping)
    {
        _connection.TrySendPacket(open);
        Engine.StartHeartbeat();
        Running = RunAsync(stopping);
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            await _hub.RunAsync(null, receiving => Engine.Ended.WaitAsync(receiving), stopping);
        }
        finally
        {
            // Over on the hub's side (the server stopping): the transport lets go too, or a WebSocket would hold the shutdown.
            Engine.End("server stopping", abort: true);
        }
    }

    /// <summary>The client closed its WebSocket: answer the close, and end.</summary>
    public void ClosedByClient()
    {
        _connection.Close(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye");
        Engine.End("closed by the client");
    }

    /// <summary>Sends what waits (after an upgrade, what polling did not take) now.</summary>
    public void Flush() => _connection.TrySendPacket(SocketIoCodec.Noop);

    /// <summary>One packet from the client, text (a WebSocket text frame, or one of a polling body's packets).</summary>
    public async Task ReadAsync(ReadOnlyMemory<byte> packet, CancellationToken cancellationToken)
    {
        await _reading.WaitAsync(cancellationToken);
        try
        {
            await ReadOneAsync(packet, cancellationToken);
        }
        finally
        {
            _reading.Release();
        }
    }

    /// <summary>A binary packet (a WebSocket binary frame, or a polling packet starting <c>b</c>): an attachment to skip, or refused.</summary>
    public void ReadBinary()
    {
        if (Interlocked.Decrement(ref _attachmentsToSkip) >= 0)
        {
            return;
        }
        Interlocked.Exchange(ref _attachmentsToSkip, 0);
        _hub.Refuse(HubErrorCodes.BinaryNotSupported, "Covibe's events carry JSON: send no binary data.");
    }

    /// <summary>A packet larger than <see cref="HubOptions.MaxMessageBytes"/>: refused, the session goes on.</summary>
    public void TooLarge() => _hub.Refuse(HubErrorCodes.MessageTooLarge, $"Packets are limited to {_options.MaxMessageBytes} bytes.");

    private async Task ReadOneAsync(ReadOnlyMemory<byte> packet, CancellationToken cancellationToken)
    {
        if (!SocketIoCodec.TryReadEngine(packet, out var type, out var data))
        {
            if (_hub.Admit())
            {
                _hub.Refuse(HubErrorCodes.InvalidMessage, "Not an Engine.IO packet: each starts with its type, a digit from 0 to 6 (socketio/engine.io-protocol).");
            }
            return;
        }
        switch (type)
        {
            case EnginePacketType.Pong:
                Engine.Pong();
                break;
            case EnginePacketType.Close:
                Engine.End("closed by the client");
                break;
            case EnginePacketType.Message:
                if (_hub.Admit())
                {
                    await MessageAsync(data, cancellationToken);
                }
                break;
            default:
                // Ping (only as a probe, which the WebSocket side answers), upgrade and noop carry nothing here.
                break;
        }
    }

    private async Task MessageAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (!SocketIoCodec.TryReadSocketIo(data, out var packet, out var error))
        {
            _hub.Refuse(HubErrorCodes.InvalidMessage, error!);
            return;
        }
        if (packet.Attachments > 0)
        {
            Interlocked.Exchange(ref _attachmentsToSkip, packet.Attachments);
            _hub.Refuse(HubErrorCodes.BinaryNotSupported, "Covibe's events carry JSON: send no binary data.");
            return;
        }
        if (packet.Namespace != "/")
        {
            if (packet.Type == SocketIoPacketType.Connect)
            {
                _connection.TrySendPacket(SocketIoCodec.ConnectError(packet.Namespace, "Invalid namespace"));
            }
            return;
        }
        switch (packet.Type)
        {
            case SocketIoPacketType.Connect:
                await ConnectAsync(packet.Payload, cancellationToken);
                break;
            case SocketIoPacketType.Disconnect:
                Engine.End("disconnected by the client");
                break;
            case SocketIoPacketType.Event when !_connected:
                // The protocol: nothing before CONNECT.
                Engine.End("an event before connecting");
                break;
            case SocketIoPacketType.Event:
                await EventAsync(packet, cancellationToken);
                break;
            default:
                // The server never asks for acknowledgements; a client's CONNECT_ERROR means nothing.
                break;
        }
    }

    /// <summary>
    /// CONNECT to the main namespace, with <c>auth</c> <c>{token, teamId?, followAgents?}</c> (joins at once, like
    /// <c>join_team</c>) or without (then <c>join_team</c>, or the handshake's Authorization header).
    /// </summary>
    private async Task ConnectAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (_connected)
        {
            return;
        }
        JoinTeamMessage? auth = null;
        if (payload.Length > 0)
        {
            try
            {
                auth = JsonSerializer.Deserialize(payload.Span, CovibeJsonContext.Default.JoinTeamMessage);
            }
            catch (JsonException)
            {
                _connection.TrySendPacket(SocketIoCodec.ConnectError("/", "The auth of CONNECT is {token, teamId}: an object.", Code(HubErrorCodes.InvalidMessage)));
                return;
            }
        }
        var caller = _authenticated;
        if (auth?.Token is { Length: > 0 } token)
        {
            var (member, code, failure) = await _hub.AuthenticateAsync(auth.TeamId, token, cancellationToken);
            if (member is null)
            {
                _connection.TrySendPacket(SocketIoCodec.ConnectError("/", failure!, Code(code!)));
                return;
            }
            caller = member;
        }
        _connected = true;
        _connection.TrySendPacket(SocketIoCodec.Connected(_connection.Id));
        if (caller is not null)
        {
            await _hub.JoinAsync(caller, auth?.FollowAgents ?? true, cancellationToken);
        }
    }

    private async Task EventAsync(SocketIoPacket packet, CancellationToken cancellationToken)
    {
        string? name = null;
        JsonElement message = default;
        try
        {
            using var document = JsonDocument.Parse(packet.Payload);
            var args = document.RootElement;
            if (args.ValueKind == JsonValueKind.Array && args.GetArrayLength() > 0 && args[0].ValueKind == JsonValueKind.String)
            {
                name = args[0].GetString();
                message = args.GetArrayLength() > 1 ? args[1].Clone() : EmptyObject;
            }
        }
        catch (JsonException)
        {
            _hub.Refuse(HubErrorCodes.BadJson, "The event's payload is not valid JSON.");
            return;
        }
        if (name is null)
        {
            _hub.Refuse(HubErrorCodes.InvalidMessage, "An event is a JSON array: its name, then its message, e.g. 42[\"chat_message\",{\"message\":\"hi\"}].");
            return;
        }
        if (message.ValueKind != JsonValueKind.Object)
        {
            _hub.Refuse(HubErrorCodes.InvalidMessage, $"The message of '{(name.Length <= 64 ? name : name[..64])}' is a JSON object, e.g. {{\"message\":\"hi\"}}.");
            return;
        }
        await _hub.EventAsync(name, message, packet.AckId, cancellationToken);
    }

    private static byte[] Code(string code) => System.Text.Encoding.UTF8.GetBytes("{\"code\":\"" + code + "\"}");
}
