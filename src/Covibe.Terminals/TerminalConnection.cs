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
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly MessageRate _messages = WebSocketText.MessageLimiter(options.MessagesPerSecond);
    private readonly Dictionary<string, Attachment> _attachments = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _closing = new();
    // Signalled when the sessions this user can see change (one loop sends them a fresh list) or
    // when the connection must end (that loop says why and closes).
    private readonly SemaphoreSlim _wake = new(0);
    private Task _controlLoop = Task.CompletedTask;
    // Cancelled a moment after our goodbye close frame went out, in case the client never answers it.
    private readonly CancellationTokenSource _closeDeadline = new();
    private TerminalUser? _user;
    private TerminalUpstreams? _upstreams;
    private volatile string? _goodbye;

    public async Task RunAsync(TerminalUser? user, CancellationToken cancellationToken, CancellationToken stopping = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token, _closeDeadline.Token);
        var token = linked.Token;
        // A stopping server says goodbye (1001) rather than sit out the host's shutdown timeout.
        using var onStopping = stopping.Register(() => Goodbye(GoodbyeStopping));
        if (user is not null)
        {
            await AuthenticatedAsync(user, token);
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
                        await ErrorAsync(null, null, TerminalErrorCodes.Unauthorized,
                            $"Send {{\"type\":\"auth\",\"token\":\"...\"}} within {options.AuthTimeoutSeconds} s of connecting (or an Authorization header on the upgrade).", token);
                        await CloseOutputAsync(WebSocketCloseStatus.PolicyViolation, "unauthorized", token);
                        await receiving;
                        return;
                    }
                }
                var received = await receiving;
                if (received.Closed)
                {
                    if (_goodbye is null)
                    {
                        await CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", token);
                    }
                    return;
                }
                if (received.TooLarge)
                {
                    await ErrorAsync(null, null, TerminalErrorCodes.MessageTooLarge, $"Messages are limited to {options.MaxMessageBytes} bytes.", token);
                    continue;
                }
                if (received.Binary)
                {
                    await ErrorAsync(null, null, TerminalErrorCodes.InvalidMessage, "Send JSON messages as text frames.", token);
                    continue;
                }
                if (!_messages.TryTake())
                {
                    await ErrorAsync(null, null, TerminalErrorCodes.RateLimited, $"Too many messages: at most {options.MessagesPerSecond} a second. This one was dropped; send it again shortly.", token);
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
            await ErrorAsync(null, null, TerminalErrorCodes.InvalidMessage, $"The message is not valid JSON of the terminal protocol: {e.Message}", cancellationToken);
            return;
        }
        if (request?.Type is null)
        {
            await ErrorAsync(null, null, TerminalErrorCodes.InvalidMessage, "Each message is a JSON object with a \"type\": session, command, input or auth.", cancellationToken);
            return;
        }
        if (_user is null)
        {
            if (request.Type == TerminalMessageTypes.Auth)
            {
                var result = await authenticator.AuthenticateAsync(request.Token ?? "", cancellationToken);
                if (result.User is null)
                {
                    await FailAuthAsync(result.Failure!, cancellationToken);
                    return;
                }
                await AuthenticatedAsync(result.User, cancellationToken);
                return;
            }
            await FailAuthAsync("Authenticate first: send {\"type\":\"auth\",\"token\":\"...\"} (or an Authorization header on the upgrade).", cancellationToken);
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
                    await ErrorAsync(null, null, TerminalErrorCodes.InvalidMessage, "This connection is authenticated already.", cancellationToken);
                    break;
                default:
                    await ErrorAsync(request.Id, request.Session, TerminalErrorCodes.UnknownType,
                        $"Unknown message type '{PrintableText.Of(request.Type)}'. Send session, command or input.", cancellationToken);
                    break;
            }
        }
        catch (TerminalException e)
        {
            var sessionId = request.Type == TerminalMessageTypes.Session ? request.Id : request.Session;
            var id = request.Type == TerminalMessageTypes.Session ? null : request.Id;
            await ErrorAsync(id, sessionId, e.Code, e.Message, cancellationToken);
        }
        catch (Exception e) when (e is not (OperationCanceledException or WebSocketException or ObjectDisposedException))
        {
            // A fault of ours: say so (with an id to find it in the log), and keep the connection.
            var errorId = Guid.NewGuid().ToString("N")[..12];
            TerminalLog.MessageFailed(logger, request.Type, errorId, e);
            await ErrorAsync(request.Type == TerminalMessageTypes.Session ? null : request.Id, request.Type == TerminalMessageTypes.Session ? request.Id : request.Session,
                TerminalErrorCodes.InternalError, $"The server failed to handle this {request.Type} message (error id {errorId}). Nothing else is affected; report the id if it persists.", cancellationToken);
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
                    await SayGoodbyeAsync(reason, cancellationToken);
                    return;
                }
                await SendListAsync(user, cancellationToken);
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

    private async Task SayGoodbyeAsync(string reason, CancellationToken cancellationToken)
    {
        if (reason == GoodbyeSignedOut)
        {
            await ErrorAsync(null, null, TerminalErrorCodes.Unauthorized,
                "Your login was signed out or you were removed from the team. Your sessions keep running; log in again to attach.", cancellationToken);
        }
        await CloseOutputAsync(reason == GoodbyeSignedOut ? WebSocketCloseStatus.PolicyViolation : WebSocketCloseStatus.EndpointUnavailable, reason, cancellationToken);
    }

    /// <summary>Sends our close frame while the receive loop keeps reading until the client's answer (2 s at most).</summary>
    private async Task CloseOutputAsync(WebSocketCloseStatus status, string reason, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            await socket.CloseOutputAsync(status, reason, cancellationToken);
        }
        finally
        {
            _sendLock.Release();
        }
        _closeDeadline.CancelAfter(TimeSpan.FromSeconds(2));
    }

    private async Task AuthenticatedAsync(TerminalUser user, CancellationToken cancellationToken)
    {
        _user = user;
        _upstreams = new TerminalUpstreams(peers, user, SendFrameAsync, logger);
        manager.SessionsChanged += OnSessionsChanged;
        peers.Changed += OnPeersChanged;
        manager.LoginsRevoked += OnLoginsRevoked;
        _controlLoop = ControlLoopAsync(user, _closing.Token);
        TerminalLog.Connected(logger, user.Id);
        await SendAsync(new TerminalReadyMessage(user.Id, user.Name), TerminalJsonContext.Wire.TerminalReadyMessage, cancellationToken);
    }

    private async Task FailAuthAsync(string reason, CancellationToken cancellationToken)
    {
        await ErrorAsync(null, null, TerminalErrorCodes.Unauthorized, reason, cancellationToken);
        await CloseAsync(WebSocketCloseStatus.PolicyViolation, "unauthorized", cancellationToken);
    }

    private Task ErrorAsync(string? id, string? session, string code, string error, CancellationToken cancellationToken) =>
        SendAsync(new TerminalErrorMessage(id, session, error, code), TerminalJsonContext.Wire.TerminalErrorMessage, cancellationToken);

    private Task SendAsync<T>(T message, JsonTypeInfo<T> type, CancellationToken cancellationToken) =>
        SendFrameAsync(JsonSerializer.SerializeToUtf8Bytes(message, type), cancellationToken);

    private Task SendFrameAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken) =>
        WebSocketText.SendAsync(socket, _sendLock, frame, cancellationToken);

    private async Task CloseAsync(WebSocketCloseStatus status, string reason, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(TimeSpan.FromSeconds(2));
                await socket.CloseAsync(status, reason, deadline.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // Gone already.
        }
        finally
        {
            _sendLock.Release();
        }
    }

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
        _sendLock.Dispose();
        _wake.Dispose();
        _closeDeadline.Dispose();
    }


}
