using System.Collections.Concurrent;
using System.Net.WebSockets;

using Covibe.Server.Features.Auth;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// One client WebSocket. Frames are queued and sent in order by whichever thread finds the socket
/// idle: a broadcast to many connections writes each frame straight into its socket's buffer on
/// the broadcasting thread, with no task or thread switch per connection, while a connection whose
/// socket is busy keeps its frames queued and drains them asynchronously when the socket frees.
/// A broadcast never waits on a slow client; a client whose queue fills up is dropped (it
/// reconnects and reloads) rather than slowing the others or growing memory.
/// </summary>
public sealed class HubConnection : IDisposable
{
    private readonly WebSocket _socket;
    private readonly ConcurrentQueue<Outgoing> _queue = new();
    private readonly int _queueCapacity;
    private int _queued;
    // 1 while one thread owns the socket's sending side (SendAsync allows one send at a time).
    private int _sending;
    // Agent output is flow-controlled rather than dropped: at most this many bytes of it are
    // queued per connection (beyond what the socket holds), so a slow reader only slows its own
    // subscriptions, memory stays bounded, and chat and status messages always find room.
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

    private readonly SharedDeflate.FrameWriter? _compressed;

    internal HubConnection(WebSocket socket, int queueCapacity, string remoteAddress, int streamBudgetBytes = 256 * 1024, SharedDeflate.FrameWriter? compressed = null)
    {
        _socket = socket;
        _compressed = compressed;
        _queueCapacity = queueCapacity;
        _streamBudget = streamBudgetBytes;
        RemoteAddress = remoteAddress;
    }

    public string Id { get; } = Guid.NewGuid().ToString("N");

    public string RemoteAddress { get; }

    public Caller? Member { get; private set; }

    /// <summary><c>online</c> or <c>away</c>, as this tab or device last reported.</summary>
    public string Status { get; set; } = Protocol.PresenceStatuses.Online;

    internal WebSocket Socket => _socket;

    /// <summary>Whether agent output goes out as shared compressed frames (the client negotiated permessage-deflate).</summary>
    public bool SharesCompression => _compressed is not null;

    /// <summary>Bytes of agent output queued here and not yet taken by the socket (at most the budget, or one frame).</summary>
    internal long QueuedStreamBytes => Interlocked.Read(ref _streamQueued);

    internal void Join(Caller member) => Member = member;

    /// <summary>
    /// Queues a serialized frame. False when this call found the queue full: the client is too
    /// slow, so the connection is dropped. Frames for a closing connection are discarded (true).
    /// </summary>
    public bool TrySend(byte[] frame)
    {
        // Closing (or closed) already: drop quietly so the queued close still goes out.
        if (Volatile.Read(ref _closing))
        {
            return true;
        }
        if (Enqueue(new Outgoing(frame, null, null)))
        {
            return true;
        }
        Overflowed();
        return false;
    }

    /// <summary>
    /// Queues a frame of a stream (agent output) if this connection has room for it: false when
    /// it already has its budget of stream bytes queued (the reader is behind; its subscription
    /// then catches up at its own pace) or is closing. Never waits: a broadcast calls it.
    /// </summary>
    public bool TryQueueStream(byte[] frame, bool compressed = false)
    {
        if (Volatile.Read(ref _closing))
        {
            return false;
        }
        var queued = Interlocked.Add(ref _streamQueued, frame.Length);
        // One frame always fits an empty budget, however large.
        if (queued > _streamBudget && queued != frame.Length)
        {
            Interlocked.Add(ref _streamQueued, -frame.Length);
            return false;
        }
        if (Enqueue(new Outgoing(frame, null, null, StreamBytes: frame.Length, Compressed: compressed && _compressed is not null)))
        {
            return true;
        }
        Interlocked.Add(ref _streamQueued, -frame.Length);
        Overflowed(); // the queue is full of other messages
        return false;
    }

    /// <summary>Queues a frame of a stream, waiting while this connection has its budget of stream bytes queued.</summary>
    public async Task SendStreamAsync(byte[] frame, CancellationToken cancellationToken, bool compressed = false)
    {
        while (!TryQueueStream(frame, compressed))
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
            if (TryQueueStream(frame, compressed))
            {
                return;
            }
            await room.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Sends <paramref name="lastFrame"/> if given, then closes. Nothing queued after this is sent.</summary>
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
        if (!Enqueue(new Outgoing(null, status, reason)))
        {
            _socket.Abort();
        }
    }

    /// <summary>
    /// Lets the connection send (frames queued before this go out now) until <see cref="Complete"/>;
    /// the task ends when everything queued by then is sent or dropped.
    /// </summary>
    public Task RunWriterAsync(CancellationToken cancellationToken)
    {
        _stopping = cancellationToken;
        Kick();
        return _writerDone.Task;
    }

    /// <summary>Stops the writer once the reader has finished: what is queued still goes out.</summary>
    internal void Complete()
    {
        Volatile.Write(ref _closing, true);
        Volatile.Write(ref _finishing, true);
        WakeStreamSenders();
        Kick();
    }

    /// <summary>Cancelled shortly after this side has sent its close frame: stop waiting for the peer's.</summary>
    internal CancellationToken CloseDeadline => _closeDeadline.Token;

    /// <summary>Call once the writer and every stream sender have finished.</summary>
    public void Dispose()
    {
        _closeDeadline.Dispose();
    }

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

    private void Overflowed()
    {
        if (Interlocked.Exchange(ref _closing, true))
        {
            return;
        }
        Volatile.Write(ref _dead, true);
        WakeStreamSenders();
        _socket.Abort();
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
    /// Sends what is queued, in order. Runs synchronously on the caller's thread while the socket
    /// takes frames at once (the usual case: they go into its buffer); continues asynchronously
    /// when a send has to wait for the peer.
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
                    try
                    {
                        if (item.Compressed)
                        {
                            await _compressed!.WriteCompressedTextAsync(item.Frame!, _stopping);
                        }
                        else if (item.Frame is not null)
                        {
                            await _socket.SendAsync(item.Frame, WebSocketMessageType.Text, endOfMessage: true, _stopping);
                        }
                        else
                        {
                            Volatile.Write(ref _dead, true); // nothing goes out after the close frame
                            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                            {
                                await _socket.CloseOutputAsync(item.CloseStatus!.Value, item.CloseReason, _stopping);
                                _closeDeadline.CancelAfter(TimeSpan.FromSeconds(2));
                            }
                        }
                    }
                    catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
                    {
                        // The peer went away; the reader side notices and cleans up.
                        Volatile.Write(ref _dead, true);
                    }
                    catch (Exception)
                    {
                        // Anything else leaves the stream in an unknown state: end the connection
                        // (the client reconnects and resumes by position) rather than leave it wedged.
                        Volatile.Write(ref _dead, true);
                        _socket.Abort();
                    }
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

    private readonly record struct Outgoing(byte[]? Frame, WebSocketCloseStatus? CloseStatus, string? CloseReason, int StreamBytes = 0, bool Compressed = false);
}
