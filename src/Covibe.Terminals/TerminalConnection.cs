using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Covibe.Protocol;

namespace Covibe.Terminals;

/// <summary>
/// One client WebSocket speaking seed 004's terminal protocol. Each attached session has its
/// own pump that sends output as the client takes it (a slow client holds back only the
/// sessions it watches, within the lag limit). Closing the socket detaches; sessions live on.
/// </summary>
internal sealed class TerminalConnection(
    WebSocket socket,
    TerminalManager manager,
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
                        $"Unknown message type '{Printable(request.Type)}'. Send session, command or input.", cancellationToken);
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

    private async Task SessionAsync(TerminalRequest request, TerminalUser user, CancellationToken cancellationToken)
    {
        switch (request.Action)
        {
            case TerminalActions.Create:
            {
                var session = await manager.CreateAsync(user, request.Id, request.Config, cancellationToken);
                await SendAsync(new TerminalSessionMessage(TerminalActions.Created, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
                await AttachAsync(session, since: 0, readOnly: false);
                break;
            }
            case TerminalActions.Attach:
            {
                var session = Visible(request.Id, user);
                await AttachAsync(session, request.Since, readOnly: !session.IsOwner(user));
                break;
            }
            case TerminalActions.Detach:
            {
                var session = Visible(request.Id, user);
                await DetachAsync(session.Id);
                await SendAsync(new TerminalSessionMessage(TerminalActions.Detached, session.Id), TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
                break;
            }
            case TerminalActions.Resize:
            {
                var session = Owned(request.Id, user);
                var (cols, rows) = TerminalLaunch.Size(request.Config?.Cols ?? request.Cols, request.Config?.Rows ?? request.Rows);
                if (!session.Resize(cols, rows))
                {
                    throw Gone(session.Id);
                }
                await SendAsync(new TerminalSessionMessage(TerminalActions.Resized, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
                break;
            }
            case TerminalActions.Share:
            {
                var session = Owned(request.Id, user);
                session.SetShared(request.Shared ?? true);
                manager.Changed(session);
                await SendAsync(new TerminalSessionMessage(TerminalActions.Shared, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
                break;
            }
            case TerminalActions.Close:
            {
                var session = Owned(request.Id, user);
                var exitCode = await session.CloseAsync(cancellationToken);
                await SendAsync(new TerminalSessionMessage(TerminalActions.Closed, session.Id, ExitCode: exitCode), TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
                break;
            }
            case TerminalActions.List:
                await SendListAsync(user, cancellationToken);
                break;
            default:
                throw new TerminalException(TerminalErrorCodes.UnknownAction,
                    $"Unknown session action '{Printable(request.Action ?? "")}'. Use create, attach, detach, resize, share, close or list.");
        }
    }

    private void Command(TerminalRequest request, TerminalUser user)
    {
        var session = Owned(request.Session, user);
        if (request.Command is null)
        {
            throw new TerminalException(TerminalErrorCodes.InvalidMessage, "A command message needs \"command\": the line to run.");
        }
        CheckLength(request.Command);
        var line = TerminalLaunch.CommandLine(request.Command, request.Cwd, request.Env, session.CommandDirectory);
        if (!session.Write(Encoding.UTF8.GetBytes(line), request.Id ?? ""))
        {
            throw Gone(session.Id);
        }
    }

    private void Input(TerminalRequest request, TerminalUser user)
    {
        var session = Owned(request.Session, user);
        if (request.Data is null)
        {
            throw new TerminalException(TerminalErrorCodes.InvalidMessage, "An input message needs \"data\": the keystrokes to send.");
        }
        CheckLength(request.Data);
        if (!session.Write(Encoding.UTF8.GetBytes(request.Data), commandId: null))
        {
            throw Gone(session.Id);
        }
    }

    private void CheckLength(string text)
    {
        if (text.Length > options.MaxCommandLength)
        {
            throw new TerminalException(TerminalErrorCodes.CommandTooLong, $"Commands and input are limited to {options.MaxCommandLength} characters; this one has {text.Length}.");
        }
    }

    private TerminalSession Visible(string? id, TerminalUser user)
    {
        var session = manager.Find(id);
        if (session is null || !session.IsVisibleTo(user))
        {
            throw new TerminalException(TerminalErrorCodes.SessionNotFound,
                $"There is no session '{Printable(id ?? "")}' you can see. List yours with {{\"type\":\"session\",\"action\":\"list\"}}.");
        }
        return session;
    }

    private TerminalSession Owned(string? id, TerminalUser user)
    {
        var session = Visible(id, user);
        if (!session.IsOwner(user))
        {
            throw new TerminalException(TerminalErrorCodes.Forbidden, $"Session '{session.Id}' belongs to {session.Owner.Name}; you may watch it, not type into it, resize or close it.");
        }
        return session;
    }

    private static TerminalException Gone(string id) =>
        new(TerminalErrorCodes.CommandFailed, $"The shell of session '{id}' has exited.");

    private async Task AttachAsync(TerminalSession session, long? since, bool readOnly)
    {
        await DetachAsync(session.Id);
        var cursor = session.Attach(since);
        var attachment = new Attachment(session, cursor, CancellationTokenSource.CreateLinkedTokenSource(_closing.Token));
        _attachments[session.Id] = attachment;
        attachment.Pump = PumpAsync(attachment, readOnly, _user!);
    }

    private async Task DetachAsync(string sessionId)
    {
        if (_attachments.Remove(sessionId, out var attachment))
        {
            await attachment.StopAsync();
        }
    }

    /// <summary>Sends the session's output from the cursor on, then <c>exited</c> when the shell has gone.</summary>
    private async Task PumpAsync(Attachment attachment, bool readOnly, TerminalUser user)
    {
        var (session, cursor) = (attachment.Session, attachment.Cursor);
        var cancellationToken = attachment.Stopping.Token;
        var buffer = new byte[OutputChunk];
        var frame = new ArrayBufferWriter<byte>(OutputChunk + 1024);
        var sizeVersion = session.SizeVersion;
        try
        {
            await SendAsync(new TerminalSessionMessage(TerminalActions.Attached, session.Id, session.Info(), readOnly, cursor.From, cursor.Truncated ? true : null),
                TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
            while (true)
            {
                if (readOnly && !session.IsVisibleTo(user))
                {
                    await SendAsync(new TerminalSessionMessage(TerminalActions.Detached, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
                    return; // the owner stopped sharing
                }
                if (session.SizeVersion != sizeVersion)
                {
                    // Resized (by this or another connection): every viewer hears it, so watchers draw at the program's size.
                    sizeVersion = session.SizeVersion;
                    await SendAsync(new TerminalSessionMessage(TerminalActions.Resized, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
                }
                switch (cursor.Take(buffer, out var count))
                {
                    case TakeState.Data:
                        WriteOutputFrame(frame, session, buffer.AsSpan(0, count), cursor.Position);
                        await SendFrameAsync(frame.WrittenMemory, cancellationToken);
                        break;
                    case TakeState.Empty:
                        await cursor.WaitAsync(cancellationToken);
                        break;
                    case TakeState.Completed:
                        var exitCode = await session.Exited.WaitAsync(cancellationToken);
                        await SendAsync(new TerminalSessionMessage(TerminalActions.Exited, session.Id, session.Info(), ExitCode: exitCode), TerminalJsonContext.Wire.TerminalSessionMessage, cancellationToken);
                        return;
                    case TakeState.Evicted:
                        TerminalLog.SlowViewer(logger, session.Id, options.SlowViewerSeconds);
                        await ErrorAsync(null, session.Id, TerminalErrorCodes.ViewerTooSlow,
                            $"This connection did not take the output for {options.SlowViewerSeconds} s and held the terminal back, so it was detached. Attach again with \"since\": {cursor.Position} to catch up.",
                            cancellationToken);
                        return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            // Detached, or the client went away.
        }
        finally
        {
            session.Detach(cursor);
        }
    }

    private Task SendListAsync(TerminalUser user, CancellationToken cancellationToken) =>
        SendAsync(new TerminalSessionsMessage([.. manager.Sessions.Where(s => s.IsVisibleTo(user)).Select(s => s.Info())]),
            TerminalJsonContext.Wire.TerminalSessionsMessage, cancellationToken);

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

    private static readonly JsonWriterOptions FrameOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    /// <summary>
    /// An <see cref="TerminalOutputMessage"/> written straight from the output bytes into a reused
    /// buffer: no string of the data and no large short-lived arrays on the hot path. Output that
    /// is not valid UTF-8 goes through a string, which replaces the bad bytes with U+FFFD.
    /// </summary>
    private void WriteOutputFrame(ArrayBufferWriter<byte> frame, TerminalSession session, ReadOnlySpan<byte> data, long end)
    {
        frame.ResetWrittenCount();
        using var writer = new Utf8JsonWriter(frame, FrameOptions);
        writer.WriteStartObject();
        writer.WriteString("type"u8, TerminalMessageTypes.Output);
        if (session.LastCommandId is { } commandId)
        {
            writer.WriteString("id"u8, commandId);
        }
        writer.WriteString("session"u8, session.Id);
        if (System.Text.Unicode.Utf8.IsValid(data))
        {
            writer.WriteString("data"u8, data);
        }
        else
        {
            writer.WriteString("data"u8, Encoding.UTF8.GetString(data));
        }
        writer.WriteString("timestamp"u8, time.GetUtcNow().UtcDateTime);
        writer.WriteNumber("end"u8, end);
        writer.WriteEndObject();
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
        manager.SessionsChanged += OnSessionsChanged;
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

    private async Task SendFrameAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        finally
        {
            _sendLock.Release();
        }
    }

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

    private static string Printable(string value) =>
        new([.. value.Take(100).Select(c => char.IsControl(c) ? '?' : c)]);

    private sealed class Attachment(TerminalSession session, OutputCursor cursor, CancellationTokenSource stopping)
    {
        public TerminalSession Session { get; } = session;

        public OutputCursor Cursor { get; } = cursor;

        public CancellationTokenSource Stopping { get; } = stopping;

        public Task Pump { get; set; } = Task.CompletedTask;

        public async Task StopAsync()
        {
            await Stopping.CancelAsync();
            await Pump;
            Stopping.Dispose();
        }
    }
}
