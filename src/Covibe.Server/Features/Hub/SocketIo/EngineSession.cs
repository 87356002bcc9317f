using System.Net.WebSockets;
using Covibe.Web;

namespace Covibe.Server.Features.Hub.SocketIo;

/// <summary>
/// One Engine.IO session: the transport a client's packets travel on (HTTP long polling, a WebSocket, or polling upgraded
/// to a WebSocket), its heartbeat, and, as the <see cref="IOutboxSink"/> of its hub connection's <see cref="Outbox"/>, where
/// that outbox's packets go: straight onto the WebSocket, or held (up to <see cref="SocketIoOptions.PollBufferBytes"/>) for
/// the client's next long-polling GET. Reading (<see cref="SocketIoSession"/>) and the HTTP side
/// (<see cref="SocketIoEndpoint"/>) drive it; it never interprets Socket.IO.
/// </summary>
internal sealed partial class EngineSession : IOutboxSink, IDisposable
{
    private readonly Lock _gate = new();
    private readonly SocketIoOptions _options;
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _ending = new();
    private readonly Timer _heartbeat;
    // Long polling: packets held for the next GET, and who waits for what.
    private List<ReadOnlyMemory<byte>> _held = [];
    private long _heldBytes;
    private TaskCompletionSource? _packetsReady;
    private TaskCompletionSource? _room;
    private bool _polling;
    private bool _posting;
    // A WebSocket probe has arrived: a GET gets a noop so the client can finish the upgrade.
    private bool _upgrading;
    private WebSocketSink? _socket;
    private WebSocket? _webSocket;
    // Polling packets no GET took before the upgrade: they go out on the WebSocket first.
    private List<ReadOnlyMemory<byte>>? _leftovers;
    // The outbox has closed: nothing more comes; polling's close packet goes in a response after what is held (clients
    // act on Socket.IO packets a tick later than on Engine.IO's close, so a close in the same response would overtake them).
    private bool _closing;
    private bool _closed;
    private bool _awaitingPong;

    public EngineSession(string sid, string remoteAddress, SocketIoOptions options)
    {
        Sid = sid;
        RemoteAddress = remoteAddress;
        _options = options;
        _heartbeat = new Timer(_ => Heartbeat(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Engine.IO's session id: unguessable, in the client's URLs (never in a log), honoured only from <see cref="RemoteAddress"/>.</summary>
    public string Sid { get; }

    public string RemoteAddress { get; }

    /// <summary>Completes when the session is over (closed by either side, timed out, or dropped).</summary>
    public Task Ended => _ended.Task;

    /// <summary>Cancelled when the session ends: a transport's reading stops.</summary>
    public CancellationToken EndedToken => _ending.Token;

    /// <summary>Why it ended (for the log).</summary>
    public string? EndReason { get; private set; }

    public bool SharesCompression => false;

    /// <summary>Raised when a ping is due: the owner queues it on the outbox (behind what is already queued, as a message).</summary>
    public event Action? PingRequested;

    /// <summary>Starts the heartbeat: a ping every interval, and the end of the session when one goes unanswered.</summary>
    public void StartHeartbeat() => ScheduleBeat(_options.PingIntervalMilliseconds);

    /// <summary>The client answered a ping.</summary>
    public void Pong()
    {
        lock (_gate)
        {
            _awaitingPong = false;
        }
        if (!_ended.Task.IsCompleted)
        {
            ScheduleBeat(_options.PingIntervalMilliseconds);
        }
    }

    /// <summary>A session that starts on a WebSocket (no polling first).</summary>
    public void UseWebSocket(FramedWebSocket socket)
    {
        lock (_gate)
        {
            _webSocket = socket.Socket;
            _socket = socket.Sink();
        }
    }

    /// <summary>
    /// A long-polling GET: the packets held (waiting for one if none is), as one body. Null: the request is refused (the
    /// session is on a WebSocket or over, or another GET is active, which ends the session, as the protocol says).
    /// </summary>
    public async Task<byte[]?> PollAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_socket is not null || _closed && _held.Count == 0)
            {
                return null;
            }
            if (_polling)
            {
                End("two GET requests at once", abort: true);
                return null;
            }
            _polling = true;
        }
        List<ReadOnlyMemory<byte>> taken;
        var closing = false;
        try
        {
            while (true)
            {
                Task ready;
                lock (_gate)
                {
                    if (_held.Count > 0 || _upgrading || _socket is not null || _closed || _closing)
                    {
                        taken = _held.Count > 0 ? _held : _closing ? [SocketIoCodec.Close] : [SocketIoCodec.Noop];
                        closing = _closed || _held.Count == 0 && _closing;
                        _held = [];
                        _heldBytes = 0;
                        _room?.TrySetResult();
                        _room = null;
                        break;
                    }
                    _packetsReady ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    ready = _packetsReady.Task;
                }
                await ready.WaitAsync(cancellationToken);
            }
        }
        finally
        {
            lock (_gate)
            {
                _polling = false;
            }
        }
        if (closing)
        {
            End("closed");
        }
        return SocketIoCodec.JoinPayload(taken);
    }

    /// <summary>Whether a POST may go ahead (false: another is active, which ends the session); call <see cref="EndPost"/> after.</summary>
    public bool TryBeginPost()
    {
        lock (_gate)
        {
            if (_posting)
            {
                End("two POST requests at once", abort: true);
                return false;
            }
            _posting = true;
            return true;
        }
    }

    public void EndPost()
    {
        lock (_gate)
        {
            _posting = false;
        }
    }

    /// <summary>Ends the session (idempotent): whoever waits lets go; with <paramref name="abort"/>, the WebSocket is dropped too.</summary>
    public void End(string reason, bool abort = false)
    {
        WebSocket? socket;
        lock (_gate)
        {
            if (_ended.Task.IsCompleted)
            {
                return;
            }
            EndReason = reason;
            _closed = true;
            _room?.TrySetResult();
            _room = null;
            WakeGet();
            socket = _socket is null ? null : _webSocket;
        }
        ScheduleBeat(Timeout.Infinite);
        _ended.TrySetResult();
        _ending.Cancel();
        if (abort)
        {
            socket?.Abort();
        }
    }

    /// <summary>Socket.IO's packets are the payloads: polling joins them into a body; the WebSocket takes the frame as it is.</summary>
    public ValueTask SendAsync(PreparedFrame frame, CancellationToken cancellationToken) => SendAsync(frame.Payload, frame, cancellationToken);

    public ValueTask SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken) => SendAsync(frame, null, cancellationToken);

    private async ValueTask SendAsync(ReadOnlyMemory<byte> frame, PreparedFrame? prepared, CancellationToken cancellationToken)
    {
        WebSocketSink? socket;
        List<ReadOnlyMemory<byte>>? leftovers;
        Task? room = null;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }
            socket = _socket;
            leftovers = _leftovers;
            _leftovers = null;
            if (socket is null)
            {
                _held.Add(frame);
                _heldBytes += frame.Length;
                WakeGet();
                if (_heldBytes >= _options.PollBufferBytes)
                {
                    _room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    room = _room.Task;
                }
            }
        }
        if (room is not null)
        {
            // Held back until the client polls: the outbox's queue fills meanwhile, and a client that never polls is dropped.
            await room.WaitAsync(cancellationToken);
            return;
        }
        if (socket is null)
        {
            return;
        }
        foreach (var packet in leftovers ?? [])
        {
            await socket.SendAsync(packet, cancellationToken);
        }
        await (prepared is null ? socket.SendAsync(frame, cancellationToken) : socket.SendAsync(prepared, cancellationToken));
    }

    public async ValueTask<bool> CloseAsync(WebSocketCloseStatus status, string? reason, CancellationToken cancellationToken)
    {
        // A policy close (a revoked login, a join timeout, too many connections) says so to Socket.IO too: the client then
        // does not reconnect on its own. Others (a shutdown, a slow client) leave it free to.
        WebSocketSink? socket;
        List<ReadOnlyMemory<byte>>? leftovers;
        lock (_gate)
        {
            socket = _socket;
            leftovers = _leftovers;
            _leftovers = null;
            if (socket is null)
            {
                if (_closed || _closing)
                {
                    return false;
                }
                if (status == WebSocketCloseStatus.PolicyViolation)
                {
                    _held.Add(SocketIoCodec.Disconnect);
                }
                _closing = true;
                WakeGet();
            }
        }
        if (socket is null)
        {
            // The next GETs take what is held, then the close; a client that never polls again is let go after its ping timeout.
            _ = Task.Delay(_options.PingTimeoutMilliseconds, CancellationToken.None).ContinueWith(_ => End("closed"), TaskScheduler.Default);
            return false;
        }
        // What polling held when the upgrade completed goes first (a fatal error, say).
        foreach (var packet in leftovers ?? [])
        {
            await socket.SendAsync(packet, cancellationToken);
        }
        if (status == WebSocketCloseStatus.PolicyViolation)
        {
            await socket.SendAsync(SocketIoCodec.Disconnect, cancellationToken);
        }
        return await socket.CloseAsync(status, reason, cancellationToken);
    }

    public void Abort() => End("dropped", abort: true);

    // _ending is not disposed: a request that found the session just before it ended may still read its token (a source
    // without a timer holds nothing to release).
    public void Dispose() => _heartbeat.Dispose();

    private void Heartbeat()
    {
        bool missed;
        lock (_gate)
        {
            missed = _awaitingPong;
            _awaitingPong = true;
        }
        if (missed)
        {
            End("ping timeout", abort: true);
            return;
        }
        if (_ended.Task.IsCompleted)
        {
            return;
        }
        ScheduleBeat(_options.PingTimeoutMilliseconds);
        PingRequested?.Invoke();
    }

    /// <summary>Sets when the heartbeat next runs (a late pong may race the session's end and disposal: then nothing runs).</summary>
    private void ScheduleBeat(int after)
    {
        try
        {
            _heartbeat.Change(after, Timeout.Infinite);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void WakeGet()
    {
        var ready = _packetsReady;
        _packetsReady = null;
        ready?.TrySetResult();
    }
}
