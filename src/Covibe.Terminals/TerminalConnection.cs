using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Covibe.Protocol;
using Covibe.Web;

namespace Covibe.Terminals;

/// <summary>
/// One client WebSocket speaking seed 004's terminal protocol. Each attached session has its
/// own pump that sends output as the client takes it (a slow client holds back only the
/// sessions it watches, within the lag limit). Closing the socket detaches; sessions live on.
/// </summary>
internal sealed partial class TerminalConnection(
    WebSocket socket,
    TerminalManager manager,
    ITerminalPeers peers,
    ITerminalAuthenticator authenticator,
    TerminalOptions options,
    TimeProvider time,
    ILogger logger) : IAsyncDisposable
{
    private const int OutputChunk = 64 * 1024;
    private readonly Outbox _outbox = new(socket);
    private readonly MessageRate _messages = WebSocketText.MessageLimiter(options.MessagesPerSecond);
    private readonly Dictionary<string, Attachment> _attachments = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _closing = new();
    // Signalled when the sessions this user can see change (one loop sends them a fresh list) or
    // when the connection must end (that loop says why and closes).
    private readonly SemaphoreSlim _wake = new(0);
    private Task _controlLoop = Task.CompletedTask;
    private TerminalUser? _user;
    private TerminalUpstreams? _upstreams;
    private volatile string? _goodbye;

    public async Task RunAsync(TerminalUser? user, CancellationToken cancellationToken, CancellationToken stopping = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token, _outbox.CloseDeadline);
        var token = linked.Token;
        var writer = _outbox.RunAsync(cancellationToken);
        try
        {
            await ReceiveLoopAsync(user, stopping, token);
        }
        finally
        {
            // What is queued (a goodbye, an error) still goes out; output pumps waiting for room stop.
            _outbox.Complete();
            await writer;
        }
    }

    private async Task ReceiveLoopAsync(TerminalUser? user, CancellationToken stopping, CancellationToken token)
    {
        // A stopping server says goodbye (1001) rather than sit out the host's shutdown timeout.
        using var onStopping = stopping.Register(() => Goodbye(GoodbyeStopping));
        if (user is not null)
        {
            Authenticated(user);
        }
        using var buffer = new MessageBuffer(options.MaxMessageBytes);
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var receiving = buffer.ReceiveAsync(socket, token);
                if (_user is null)
                {
                    // Not signed in yet: the first message must come soon. (Cancelling a receive would
                    // abort the socket, so the wait is raced instead and the goodbye sent properly.)
                    var deadline = Task.Delay(TimeSpan.FromSeconds(options.AuthTimeoutSeconds), time, token);
                    if (await Task.WhenAny(receiving, deadline) != receiving)
                    {
                        Error(null, null, TerminalErrorCodes.Unauthorized,
                            $"Send {{\"type\":\"auth\",\"token\":\"...\"}} within {options.AuthTimeoutSeconds} s of connecting (or an Authorization header on the upgrade).");
                        _outbox.Close(WebSocketCloseStatus.PolicyViolation, "unauthorized");
                        await receiving;
                        return;
                    }
                }
                var received = await receiving;
                if (received.Closed)
                {
                    if (_goodbye is null)
                    {
                        _outbox.Close(WebSocketCloseStatus.NormalClosure, "bye");
                    }
                    return;
                }
                if (received.TooLarge)
                {
                    Error(null, null, TerminalErrorCodes.MessageTooLarge, $"Messages are limited to {options.MaxMessageBytes} bytes.");
                    continue;
                }
                if (received.Binary)
                {
                    Error(null, null, TerminalErrorCodes.InvalidMessage, "Send JSON messages as text frames.");
                    continue;
                }
                if (!_messages.TryTake())
                {
                    Error(null, null, TerminalErrorCodes.RateLimited, $"Too many messages: at most {options.MessagesPerSecond} a second. This one was dropped; send it again shortly.");
                    continue;
                }
                await HandleAsync(buffer.Message(received.Count), token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // The client went away (or we are stopping): its sessions live on.
        }
    }

    private const string GoodbyeStopping = "server stopping";
    private const string GoodbyeSignedOut = "signed out";

    /// <summary>Ends the connection from our side: the control loop sends the reason and a close frame.</summary>
    private void Goodbye(string reason)
    {
        _goodbye ??= reason;
        if (_user is null)
        {
            _closing.Cancel(); // not signed in yet: nothing to say goodbye to
        }
        else
        {
            _wake.Release();
        }
    }

    private async Task HandleAsync(ReadOnlyMemory<byte> json, CancellationToken cancellationToken)
    {
        TerminalRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(json.Span, TerminalJsonContext.Default.TerminalRequest);
        }
        catch (JsonException e)
        {
            Error(null, null, TerminalErrorCodes.InvalidMessage, $"The message is not valid JSON of the terminal protocol: {e.Message}");
            return;
        }
        if (request?.Type is null)
        {
            Error(null, null, TerminalErrorCodes.InvalidMessage, "Each message is a JSON object with a \"type\": session, command, input or auth.");
            return;
        }
        if (_user is null)
        {
            if (request.Type == TerminalMessageTypes.Auth)
            {
                var result = await authenticator.AuthenticateAsync(request.Token ?? "", cancellationToken);
                if (result.User is null)
                {
                    FailAuth(result.Failure!);
                    return;
                }
                Authenticated(result.User);
                return;
            }
            FailAuth("Authenticate first: send {\"type\":\"auth\",\"token\":\"...\"} (or an Authorization header on the upgrade).");
            return;
        }
        try
        {
            if (await ElsewhereAsync(request, _user, cancellationToken) is { } node)
            {
                await _upstreams!.ForwardAsync(node, request, json, cancellationToken);
                return;
            }
            switch (request.Type)
            {
                case TerminalMessageTypes.Session:
                    await SessionAsync(request, _user, cancellationToken);
                    break;
                case TerminalMessageTypes.Command:
                    Command(request, _user);
                    break;
                case TerminalMessageTypes.Input:
                    Input(request, _user);
                    break;
                case TerminalMessageTypes.Auth:
                    Error(null, null, TerminalErrorCodes.InvalidMessage, "This connection is authenticated already.");
                    break;
                default:
                    Error(request.Id, request.Session, TerminalErrorCodes.UnknownType,
                        $"Unknown message type '{PrintableText.Of(request.Type)}'. Send session, command or input.");
                    break;
            }
        }
        catch (TerminalException e)
        {
            var sessionId = request.Type == TerminalMessageTypes.Session ? request.Id : request.Session;
            var id = request.Type == TerminalMessageTypes.Session ? null : request.Id;
            Error(id, sessionId, e.Code, e.Message);
        }
        catch (Exception e) when (e is not (OperationCanceledException or WebSocketException or ObjectDisposedException))
        {
            // A fault of ours: say so (with an id to find it in the log), and keep the connection.
            var errorId = NewErrorId();
            TerminalLog.MessageFailed(logger, request.Type, errorId, e);
            Error(request.Type == TerminalMessageTypes.Session ? null : request.Id, request.Type == TerminalMessageTypes.Session ? request.Id : request.Session,
                TerminalErrorCodes.InternalError, $"The server failed to handle this {request.Type} message (error id {errorId}). Nothing else is affected; report the id if it persists.");
        }
    }

    /// <summary>The other server a message is for: the one holding its session, or where a new one must open; null: here.</summary>
    private async Task<string?> ElsewhereAsync(TerminalRequest request, TerminalUser user, CancellationToken cancellationToken)
    {
        if (request is { Type: TerminalMessageTypes.Session, Action: TerminalActions.Create })
        {
            return await peers.PlaceAsync(user, request.Config, cancellationToken);
        }
        var id = request.Type switch
        {
            TerminalMessageTypes.Session when request.Action is not TerminalActions.List => request.Id,
            TerminalMessageTypes.Command or TerminalMessageTypes.Input => request.Session,
            _ => null,
        };
        return id is not null && manager.Find(id) is null ? _upstreams?.NodeOf(id) ?? peers.Find(id)?.Node : null;
    }

    private void OnPeersChanged(string? teamId)
    {
        if (_user is { } user && (teamId is null || teamId == user.TeamId))
        {
            _wake.Release();
        }
    }

    private void OnSessionsChanged(TerminalSession session)
    {
        if (_user is { } user && (session.IsOwner(user) || (session.Owner.TeamId is not null && session.Owner.TeamId == user.TeamId)))
        {
            _wake.Release();
        }
    }

    private async Task ControlLoopAsync(TerminalUser user, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await _wake.WaitAsync(cancellationToken);
                while (_wake.CurrentCount > 0)
                {
                    await _wake.WaitAsync(cancellationToken);
                }
                if (_goodbye is { } reason)
                {
                    SayGoodbye(reason);
                    return;
                }
                SendList(user);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            // Closing.
        }
    }

    private void OnLoginsRevoked(IReadOnlyCollection<string> logins)
    {
        if (_user?.Login is { } login && logins.Contains(login))
        {
            Goodbye(GoodbyeSignedOut);
        }
    }

    private void SayGoodbye(string reason)
    {
        if (reason == GoodbyeSignedOut)
        {
            Error(null, null, TerminalErrorCodes.Unauthorized,
                "Your login was signed out or you were removed from the team. Your sessions keep running; log in again to attach.");
        }
        // The receive loop keeps reading until the client's answer (2 s at most).
        _outbox.Close(reason == GoodbyeSignedOut ? WebSocketCloseStatus.PolicyViolation : WebSocketCloseStatus.EndpointUnavailable, reason);
    }

    private void Authenticated(TerminalUser user)
    {
        _user = user;
        _upstreams = new TerminalUpstreams(peers, user, _outbox, logger);
        manager.SessionsChanged += OnSessionsChanged;
        peers.Changed += OnPeersChanged;
        manager.LoginsRevoked += OnLoginsRevoked;
        _controlLoop = ControlLoopAsync(user, _closing.Token);
        TerminalLog.Connected(logger, user.Id);
        Send(new TerminalReadyMessage(user.Id, user.Name), TerminalJsonContext.Wire.TerminalReadyMessage);
    }

    private void FailAuth(string reason)
    {
        Error(null, null, TerminalErrorCodes.Unauthorized, reason);
        _outbox.Close(WebSocketCloseStatus.PolicyViolation, "unauthorized");
    }

    /// <summary>An id for a fault of ours, said to the client and written to the log, to find one from the other.</summary>
    private static string NewErrorId() => Guid.NewGuid().ToString("N")[..12];

    private void Error(string? id, string? session, string code, string error) =>
        Send(new TerminalErrorMessage(id, session, error, code), TerminalJsonContext.Wire.TerminalErrorMessage);

    /// <summary>Queues a message (never waits; a client that leaves its queue full is dropped, see <see cref="Outbox"/>).</summary>
    private void Send<T>(T message, JsonTypeInfo<T> type) => _outbox.TrySend(JsonSerializer.SerializeToUtf8Bytes(message, type));

    public async ValueTask DisposeAsync()
    {
        manager.SessionsChanged -= OnSessionsChanged;
        manager.LoginsRevoked -= OnLoginsRevoked;
        peers.Changed -= OnPeersChanged;
        if (_upstreams is not null)
        {
            await _upstreams.DisposeAsync();
        }
        await _closing.CancelAsync();
        await _controlLoop;
        foreach (var attachment in _attachments.Values)
        {
            await attachment.StopAsync();
        }
        _attachments.Clear();
        TerminalLog.Disconnected(logger, _user?.Id);
        _closing.Dispose();
        _outbox.Dispose();
        _wake.Dispose();
    }


}
