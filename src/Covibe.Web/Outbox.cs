using System.Collections.Concurrent;
using System.Net.WebSockets;

namespace Covibe.Web;

/// <summary>How much one connection's outbox holds: messages by count, streams by bytes.</summary>
/// <param name="QueueCapacity">Messages (of any kind) queued and not yet taken by the socket; one more drops the connection.</param>
/// <param name="StreamBudgetBytes">Bytes of stream frames (output) queued; a stream waits for room beyond that.</param>
public sealed record OutboxOptions(int QueueCapacity = 1024, int StreamBudgetBytes = 256 * 1024);

/// <summary>
/// The one way Covibe sends to a client (the hub, terminals, runners and the relays between nodes, over a WebSocket or
/// Socket.IO's long polling: an <see cref="IOutboxSink"/>), with one policy for a slow peer. Frames are queued and sent in order by whichever thread finds the socket idle: a broadcast to many
/// connections writes each frame straight into its socket's buffer on the broadcasting thread, with no task or thread
/// switch per connection, while a connection whose socket is busy keeps its frames queued and drains them asynchronously
/// when the socket frees.
/// <list type="bullet">
/// <item>Messages (<see cref="TrySend"/>: chat, status, errors, control) never wait: a peer whose queue of
/// <see cref="OutboxOptions.QueueCapacity"/> is full is too slow and is dropped (<see cref="Overflowed"/>); it
/// reconnects and resumes by position, rather than slowing the others or growing memory.</item>
/// <item>Streams (<see cref="SendStreamAsync"/>, <see cref="TryQueueStream"/>: agent and terminal output) are
/// flow-controlled: at most <see cref="OutboxOptions.StreamBudgetBytes"/> of them are queued, so a slow reader
/// holds back only what it watches, and messages always find room.</item>
/// </list>
/// </summary>
public sealed class Outbox : IDisposable
{
    private readonly IOutboxSink _sink;
    private readonly ConcurrentQueue<Outgoing> _queue = new();
    private readonly int _queueCapacity;
    private int _queued;
    // 1 while one thread owns the socket's sending side (SendAsync allows one send at a time).
    private int _sending;
    private readonly int _streamBudget;
    private long _streamQueued;
    private TaskCompletionSource? _streamRoom;
    private readonly Lock _streamRoomLock = new();
    // Cancelled a moment after our close frame went out, in case the peer never answers it.
    private readonly CancellationTokenSource _closeDeadline = new();
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CancellationToken _stopping;
    private bool _closing;
    private bool _finishing;
    // Set once the close frame is out or the socket failed: whatever is queued is dropped.
    private bool _dead;
    private bool _overflowed;

    public Outbox(WebSocket socket, OutboxOptions? options = null)
        : this(new WebSocketSink(socket), options)
    {
    }

    public Outbox(IOutboxSink sink, OutboxOptions? options = null)
    {
        options ??= new OutboxOptions();
        _sink = sink;
        _queueCapacity = options.QueueCapacity;
        _streamBudget = options.StreamBudgetBytes;
    }

    /// <summary>Whether compressed prepared frames (<see cref="PreparedFrame.Compressed"/>) can go out here.</summary>
    public bool SharesCompression => _sink.SharesCompression;

    /// <summary>Bytes of stream frames queued and not yet taken by the socket (at most the budget, or one frame).</summary>
    public long QueuedStreamBytes => Interlocked.Read(ref _streamQueued);

    /// <summary>Whether the connection was dropped because its peer did not take its messages (the slow-client policy).</summary>
    public bool Overflowed => Volatile.Read(ref _overflowed);

    /// <summary>Whether nothing more will be sent (closing, closed, dropped).</summary>
    public bool Closing => Volatile.Read(ref _closing);

    /// <summary>Cancelled shortly after this side has sent its close frame: stop waiting for the peer's.</summary>
    public CancellationToken CloseDeadline => _closeDeadline.Token;

    /// <summary>
    /// Queues a message. False when this call found the queue full: the peer is too slow, so the connection is dropped.
    /// Messages for a closing connection are discarded (true).
    /// </summary>
    public bool TrySend(byte[] frame) => TrySend(new Outgoing(frame, null));

    /// <summary>Queues a message made once for many connections (a broadcast), as <see cref="TrySend(byte[])"/>.</summary>
    public bool TrySend(PreparedFrame frame) => TrySend(new Outgoing(null, Takes(frame)));

    private bool TrySend(Outgoing item)
    {
        // Closing (or closed) already: drop quietly so the queued close still goes out.
        if (Volatile.Read(ref _closing))
        {
            return true;
        }
        if (Enqueue(item))
        {
            return true;
        }
        Overflow();
        return false;
    }

    /// <summary>
    /// Queues a frame of a stream if there is room for it: false when the budget of stream bytes is queued already (the
    /// reader is behind; the stream then catches up at its own pace) or the connection is closing. Never waits: a
    /// broadcast calls it.
    /// </summary>
    public bool TryQueueStream(byte[] frame) => TryQueueStream(new Outgoing(frame, null, StreamBytes: frame.Length));

    /// <summary>Queues a frame of a stream made once for many connections, as <see cref="TryQueueStream(byte[])"/>.</summary>
    public bool TryQueueStream(PreparedFrame frame) => TryQueueStream(new Outgoing(null, Takes(frame), StreamBytes: frame.Bytes.Length));

    /// <summary>Queues a frame of a stream, waiting while the budget of stream bytes is queued; throws once the connection is closing.</summary>
    public Task SendStreamAsync(byte[] frame, CancellationToken cancellationToken) =>
        SendStreamAsync(new Outgoing(frame, null, StreamBytes: frame.Length), cancellationToken);

    /// <summary>Queues a frame of a stream made once for many connections, as <see cref="SendStreamAsync(byte[], CancellationToken)"/>.</summary>
    public Task SendStreamAsync(PreparedFrame frame, CancellationToken cancellationToken) =>
        SendStreamAsync(new Outgoing(null, Takes(frame), StreamBytes: frame.Bytes.Length), cancellationToken);

    private bool TryQueueStream(Outgoing item)
    {
        if (Volatile.Read(ref _closing))
        {
            return false;
        }
        var queued = Interlocked.Add(ref _streamQueued, item.StreamBytes);
        // One frame always fits an empty budget, however large.
        if (queued > _streamBudget && queued != item.StreamBytes)
        {
            Interlocked.Add(ref _streamQueued, -item.StreamBytes);
            return false;
        }
        if (Enqueue(item))
        {
            return true;
        }
        Interlocked.Add(ref _streamQueued, -item.StreamBytes);
        Overflow(); // the queue is full of messages
        return false;
    }

    private async Task SendStreamAsync(Outgoing item, CancellationToken cancellationToken)
    {
        while (!TryQueueStream(item))
        {
            if (Volatile.Read(ref _closing))
            {
                throw new OperationCanceledException("The connection is closing.");
            }
            Task room;
            lock (_streamRoomLock)
            {
                _streamRoom ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                room = _streamRoom.Task;
            }
            // The writer may have made room before the waiter was in place: try once more first.
            if (TryQueueStream(item))
            {
                return;
            }
            await room.WaitAsync(cancellationToken);
        }
    }

    private PreparedFrame Takes(PreparedFrame frame) => !frame.Compressed || _sink.SharesCompression ? frame
        : throw new ArgumentException("A compressed frame for a connection that did not negotiate permessage-deflate.", nameof(frame));

    /// <summary>Sends <paramref name="lastFrame"/> if given, then the close frame. Nothing queued after this is sent.</summary>
    public void Close(WebSocketCloseStatus status, string reason, byte[]? lastFrame = null)
    {
        if (lastFrame is not null)
        {
            TrySend(lastFrame);
        }
        if (Interlocked.Exchange(ref _closing, true))
        {
            return;
        }
        WakeStreamSenders();
        if (!Enqueue(new Outgoing(null, null, status, reason)))
        {
            _sink.Abort();
        }
    }

    /// <summary>
    /// Lets the outbox send (frames queued before this go out now) until <see cref="Complete"/>; the task ends when
    /// everything queued by then is sent or dropped.
    /// </summary>
    public Task RunAsync(CancellationToken stopping)
    {
        _stopping = stopping;
        Kick();
        return _writerDone.Task;
    }

    /// <summary>Stops taking frames once the connection's reader has finished: what is queued still goes out.</summary>
    public void Complete()
    {
        Volatile.Write(ref _closing, true);
        Volatile.Write(ref _finishing, true);
        WakeStreamSenders();
        Kick();
    }

    /// <summary>Call once the writer (<see cref="RunAsync"/>) and every stream sender have finished.</summary>
    public void Dispose() => _closeDeadline.Dispose();

    private bool Enqueue(Outgoing item)
    {
        if (Interlocked.Increment(ref _queued) > _queueCapacity)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        _queue.Enqueue(item);
        Kick();
        return true;
    }

    private void Overflow()
    {
        if (Interlocked.Exchange(ref _closing, true))
        {
            return;
        }
        Volatile.Write(ref _overflowed, true);
        Volatile.Write(ref _dead, true);
        WakeStreamSenders();
        _sink.Abort();
    }

    /// <summary>Starts sending on this thread unless another one is already.</summary>
    private void Kick()
    {
        if (Interlocked.CompareExchange(ref _sending, 1, 0) == 0)
        {
            _ = DrainAsync();
        }
    }

    /// <summary>
    /// Sends what is queued, in order. Runs synchronously on the caller's thread while the socket takes frames at once
    /// (the usual case: they go into its buffer); continues asynchronously when a send has to wait for the peer.
    /// </summary>
    private async Task DrainAsync()
    {
        while (true)
        {
            while (_queue.TryDequeue(out var item))
            {
                Interlocked.Decrement(ref _queued);
                if (!Volatile.Read(ref _dead))
                {
                    await SendAsync(item);
                }
                if (item.StreamBytes > 0)
                {
                    StreamSent(item.StreamBytes);
                }
            }
            Volatile.Write(ref _sending, 0);
            if (Volatile.Read(ref _finishing) && _queue.IsEmpty)
            {
                _writerDone.TrySetResult();
            }
            // Something queued after the last dequeue and before the release: take it, unless another thread did.
            if (_queue.IsEmpty || Interlocked.CompareExchange(ref _sending, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private async ValueTask SendAsync(Outgoing item)
    {
        try
        {
            if (item.Prepared is not null)
            {
                await _sink.SendAsync(item.Prepared, _stopping);
            }
            else if (item.Frame is not null)
            {
                await _sink.SendAsync(item.Frame, _stopping);
            }
            else
            {
                Volatile.Write(ref _dead, true); // nothing goes out after the close frame
                if (await _sink.CloseAsync(item.CloseStatus!.Value, item.CloseReason, _stopping))
                {
                    _closeDeadline.CancelAfter(TimeSpan.FromSeconds(2));
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // The peer went away; the reader side notices and cleans up.
            Volatile.Write(ref _dead, true);
        }
        catch (Exception)
        {
            // Anything else leaves the stream in an unknown state: end the connection (the peer reconnects and resumes
            // by position) rather than leave it wedged.
            Volatile.Write(ref _dead, true);
            _sink.Abort();
        }
    }

    private void StreamSent(int bytes)
    {
        Interlocked.Add(ref _streamQueued, -bytes);
        if (Volatile.Read(ref _streamRoom) is not null)
        {
            WakeStreamSenders();
        }
    }

    private void WakeStreamSenders()
    {
        TaskCompletionSource? room;
        lock (_streamRoomLock)
        {
            room = _streamRoom;
            _streamRoom = null;
        }
        room?.TrySetResult();
    }

    /// <summary>A message or stream frame (<see cref="Frame"/> to be framed, or <see cref="Prepared"/>), or the close.</summary>
    private readonly record struct Outgoing(byte[]? Frame, PreparedFrame? Prepared, WebSocketCloseStatus? CloseStatus = null, string? CloseReason = null, int StreamBytes = 0);
}

/// <summary>Where an <see cref="Outbox"/> puts its frames, one at a time and in order (never two calls at once).</summary>
public interface IOutboxSink
{
    /// <summary>Whether compressed prepared frames (permessage-deflate shared between connections) can go out here.</summary>
    bool SharesCompression { get; }

    /// <summary>Sends one whole message; completes when the next may go.</summary>
    ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken);

    /// <summary>Sends a message framed once for many connections: its bytes as they are where it can, else its payload.</summary>
    ValueTask SendAsync(PreparedFrame frame, CancellationToken cancellationToken);

    /// <summary>Sends the close; true when the peer is expected to answer it (the outbox then waits a moment for that).</summary>
    ValueTask<bool> CloseAsync(WebSocketCloseStatus status, string? reason, CancellationToken cancellationToken);

    /// <summary>Ends the connection at once (a slow peer, a failed send).</summary>
    void Abort();
}

/// <summary>An outbox's frames as WebSocket messages: the one place the server side writes to a WebSocket.</summary>
/// <param name="frames">Writes prepared frames as they are (a <see cref="FramedWebSocket"/>'s); without it their payloads go through the socket.</param>
public sealed class WebSocketSink(WebSocket socket, FrameWriter? frames = null) : IOutboxSink
{
    public bool SharesCompression => frames?.SharesCompression ?? false;

    public ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken) =>
        socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);

    public ValueTask SendAsync(PreparedFrame frame, CancellationToken cancellationToken) => frames is not null
        ? frames.WriteAsync(frame, cancellationToken)
        : socket.SendAsync(frame.Payload, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);

    public async ValueTask<bool> CloseAsync(WebSocketCloseStatus status, string? reason, CancellationToken cancellationToken)
    {
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return false;
        }
        await socket.CloseOutputAsync(status, reason, cancellationToken);
        return true;
    }

    public void Abort() => socket.Abort();
}
