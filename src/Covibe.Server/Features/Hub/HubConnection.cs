using System.Net.WebSockets;
using System.Threading.Channels;

using Covibe.Server.Features.Auth;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// One client WebSocket. Sends go through a bounded queue drained by one writer, so a
/// broadcast never waits on a slow client; a client whose queue fills up is dropped (it
/// reconnects and reloads) rather than slowing the others or growing memory.
/// </summary>
public sealed class HubConnection : IDisposable
{
    private readonly WebSocket _socket;
    private readonly Channel<Outgoing> _outbox;
    // Agent output is flow-controlled rather than dropped: at most this many frames of it are
    // queued per connection, so a slow reader only slows its own subscriptions, and chat and
    // status messages always find room in the queue.
    private readonly SemaphoreSlim _streamBudget = new(8);
    // Cancelled a moment after our close frame went out, in case the peer never answers it.
    private readonly CancellationTokenSource _closeDeadline = new();
    private bool _closing;

    public HubConnection(WebSocket socket, int queueCapacity, string remoteAddress)
    {
        _socket = socket;
        RemoteAddress = remoteAddress;
        _outbox = Channel.CreateBounded<Outgoing>(new BoundedChannelOptions(queueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public string Id { get; } = Guid.NewGuid().ToString("N");

    public string RemoteAddress { get; }

    public Caller? Member { get; private set; }

    /// <summary><c>online</c> or <c>away</c>, as this tab or device last reported.</summary>
    public string Status { get; set; } = Protocol.PresenceStatuses.Online;

    internal WebSocket Socket => _socket;

    internal void Join(Caller member) => Member = member;

    /// <summary>
    /// Queues a serialized frame. False when this call found the queue full: the client is too
    /// slow, so the connection is dropped. Frames for a closing connection are discarded (true).
    /// </summary>
    public bool TrySend(byte[] frame)
    {
        if (_outbox.Writer.TryWrite(new Outgoing(frame, null, null)))
        {
            return true;
        }
        // Closing (or closed) already: drop quietly so the queued close still goes out.
        if (Volatile.Read(ref _closing))
        {
            return true;
        }
        Volatile.Write(ref _closing, true);
        _outbox.Writer.TryComplete();
        _socket.Abort();
        return false;
    }

    /// <summary>Queues a frame of a stream (agent output), waiting while this connection has too many of them queued.</summary>
    public async Task SendStreamAsync(byte[] frame, CancellationToken cancellationToken)
    {
        await _streamBudget.WaitAsync(cancellationToken);
        if (!_outbox.Writer.TryWrite(new Outgoing(frame, null, null, ReleasesBudget: true)))
        {
            _streamBudget.Release();
            if (!Volatile.Read(ref _closing))
            {
                TrySend(frame); // the queue is full of other messages: treat as overflow
            }
            throw new OperationCanceledException("The connection is closing.");
        }
    }

    /// <summary>Sends <paramref name="lastFrame"/> if given, then closes. Nothing queued after this is sent.</summary>
    public void Close(WebSocketCloseStatus status, string reason, byte[]? lastFrame = null)
    {
        if (lastFrame is not null)
        {
            TrySend(lastFrame);
        }
        Volatile.Write(ref _closing, true);
        if (!_outbox.Writer.TryWrite(new Outgoing(null, status, reason)))
        {
            _socket.Abort();
        }
        _outbox.Writer.TryComplete();
    }

    /// <summary>Drains the queue to the socket until closed or cancelled.</summary>
    public async Task RunWriterAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var item in _outbox.Reader.ReadAllAsync(cancellationToken))
            {
                if (item.Frame is not null)
                {
                    await _socket.SendAsync(item.Frame, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
                    if (item.ReleasesBudget)
                    {
                        _streamBudget.Release();
                    }
                }
                else if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await _socket.CloseOutputAsync(item.CloseStatus!.Value, item.CloseReason, cancellationToken);
                    _closeDeadline.CancelAfter(TimeSpan.FromSeconds(2));
                    return;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer went away; the reader side notices and cleans up.
        }
    }

    /// <summary>Stops the writer once the reader has finished.</summary>
    internal void Complete()
    {
        Volatile.Write(ref _closing, true);
        _outbox.Writer.TryComplete();
    }

    /// <summary>Cancelled shortly after this side has sent its close frame: stop waiting for the peer's.</summary>
    internal CancellationToken CloseDeadline => _closeDeadline.Token;

    /// <summary>Call once the writer and every stream sender have finished.</summary>
    public void Dispose()
    {
        _streamBudget.Dispose();
        _closeDeadline.Dispose();
    }

    private readonly record struct Outgoing(byte[]? Frame, WebSocketCloseStatus? CloseStatus, string? CloseReason, bool ReleasesBudget = false);
}
