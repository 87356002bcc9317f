using System.Net.WebSockets;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Hub.SocketIo;
using Covibe.Web;

namespace Covibe.Server.Features.Hub;

/// <summary>How a hub connection's frames go on the wire: JSON messages (<c>/ws</c>) or Socket.IO events (<c>/socket.io/</c>).</summary>
public enum HubWire
{
    Json,
    SocketIo,
}

/// <summary>
/// One client of the hub: who is on it and how they show, and its <see cref="Outbox"/> (the send path and slow-client
/// policy every connection of Covibe shares). Features hand it hub frames (<c>{"type":...}</c> JSON); it puts them on its
/// wire: as they are on <c>/ws</c>, as Socket.IO events on <c>/socket.io/</c>. Agent output goes out as streams (a slow
/// reader slows only its own subscriptions); chat, presence and status as messages (a client that does not take them is
/// dropped and reconnects).
/// </summary>
public sealed class HubConnection : IDisposable
{
    private readonly Outbox _outbox;

    internal HubConnection(Outbox outbox, string remoteAddress, HubWire wire = HubWire.Json)
    {
        _outbox = outbox;
        RemoteAddress = remoteAddress;
        Wire = wire;
    }

    public string Id { get; } = Guid.NewGuid().ToString("N");

    public string RemoteAddress { get; }

    public HubWire Wire { get; }

    public Caller? Member { get; private set; }

    /// <summary><c>online</c> or <c>away</c>, as this tab or device last reported.</summary>
    public string Status { get; set; } = Protocol.PresenceStatuses.Online;

    /// <summary>The form of agent output frames this connection takes (<see cref="AgentFrames.Of"/>), shared with every connection of that form.</summary>
    internal AgentFrameForm FrameForm => Wire == HubWire.SocketIo ? AgentFrameForm.SocketIo
        : _outbox.SharesCompression ? AgentFrameForm.Deflated : AgentFrameForm.Plain;

    /// <summary>Bytes of agent output queued here and not yet taken by the socket (at most the budget, or one frame).</summary>
    internal long QueuedStreamBytes => _outbox.QueuedStreamBytes;

    /// <summary>Whether its send queue filled and it was let go.</summary>
    internal bool Overflowed => _outbox.Overflowed;

    internal void Join(Caller member) => Member = member;

    /// <summary>Queues a hub frame as a message (see <see cref="Outbox.TrySend(byte[])"/>).</summary>
    public bool TrySend(byte[] frame) => _outbox.TrySend(OnWire(frame));

    /// <summary>Queues a hub frame made once for many connections (a broadcast), framed once per wire.</summary>
    internal bool TrySend(HubBroadcast frame) => _outbox.TrySend(frame.On(Wire));

    /// <summary>Queues a hub frame that answers the client's request: as the acknowledgement it asked for (Socket.IO), else as a message.</summary>
    internal bool TryReply(byte[] frame, long? ackId) => ackId is { } id && Wire == HubWire.SocketIo
        ? _outbox.TrySend(SocketIoCodec.Ack(id, frame))
        : TrySend(frame);

    /// <summary>Queues a packet of the wire's own (Socket.IO's connect, heartbeat and upgrade packets) as a message.</summary>
    internal bool TrySendPacket(byte[] packet) => _outbox.TrySend(packet);

    /// <summary>Queues a frame of agent output already in <see cref="FrameForm"/> if there is room (<see cref="Outbox.TryQueueStream(PreparedFrame)"/>).</summary>
    internal bool TryQueueAgentFrame(PreparedFrame frame) => _outbox.TryQueueStream(frame);

    /// <summary>Queues a frame of agent output already in <see cref="FrameForm"/>, waiting for room (<see cref="Outbox.SendStreamAsync(PreparedFrame, CancellationToken)"/>).</summary>
    internal Task SendAgentFrameAsync(PreparedFrame frame, CancellationToken cancellationToken) => _outbox.SendStreamAsync(frame, cancellationToken);

    /// <summary>Queues a hub frame on the stream budget, waiting for room (<see cref="Outbox.SendStreamAsync(byte[], CancellationToken)"/>).</summary>
    public Task SendStreamAsync(byte[] frame, CancellationToken cancellationToken) => _outbox.SendStreamAsync(OnWire(frame), cancellationToken);

    /// <summary>Sends <paramref name="lastFrame"/> (a hub frame) if given, then closes (<see cref="Outbox.Close"/>).</summary>
    public void Close(WebSocketCloseStatus status, string reason, byte[]? lastFrame = null) =>
        _outbox.Close(status, reason, lastFrame is null ? null : OnWire(lastFrame));

    /// <inheritdoc cref="Outbox.RunAsync"/>
    public Task RunWriterAsync(CancellationToken cancellationToken) => _outbox.RunAsync(cancellationToken);

    /// <inheritdoc cref="Outbox.Complete"/>
    internal void Complete() => _outbox.Complete();

    /// <inheritdoc cref="Outbox.CloseDeadline"/>
    internal CancellationToken CloseDeadline => _outbox.CloseDeadline;

    public void Dispose() => _outbox.Dispose();

    private byte[] OnWire(byte[] frame) => Wire == HubWire.SocketIo ? SocketIoCodec.Event(frame) : frame;
}

/// <summary>
/// A hub frame for many connections (a broadcast to a team): put on each wire once, as a <see cref="PreparedFrame"/> that
/// every connection of that wire writes as it is. Made and used on the broadcasting thread.
/// </summary>
internal sealed class HubBroadcast(Func<byte[]> make)
{
    private byte[]? _frame;
    private PreparedFrame? _json;
    private PreparedFrame? _socketIo;

    public HubBroadcast(byte[] frame)
        : this(() => frame)
    {
    }

    public PreparedFrame On(HubWire wire) => wire == HubWire.SocketIo
        ? _socketIo ??= PreparedFrame.Text(SocketIoCodec.Event(_frame ??= make()))
        : _json ??= PreparedFrame.Text(_frame ??= make());
}
