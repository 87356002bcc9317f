using System.Net.WebSockets;
using Covibe.Server.Features.Auth;
using Covibe.Web;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// One client WebSocket of the hub: who is on it and how they show, and its <see cref="WebSocketOutbox"/> (the send path
/// and slow-client policy every WebSocket of Covibe shares). Agent output goes out as streams (a slow reader slows only its
/// own subscriptions); chat, presence and status as messages (a client that does not take them is dropped and reloads).
/// </summary>
public sealed class HubConnection : IDisposable
{
    private readonly WebSocketOutbox _outbox;

    internal HubConnection(WebSocket socket, int queueCapacity, string remoteAddress, int streamBudgetBytes = 256 * 1024, SharedDeflate.FrameWriter? compressed = null)
    {
        _outbox = new WebSocketOutbox(socket, new WebSocketOutboxOptions(queueCapacity, streamBudgetBytes), compressed is null ? null : compressed.WriteCompressedTextAsync);
        RemoteAddress = remoteAddress;
    }

    public string Id { get; } = Guid.NewGuid().ToString("N");

    public string RemoteAddress { get; }

    public Caller? Member { get; private set; }

    /// <summary><c>online</c> or <c>away</c>, as this tab or device last reported.</summary>
    public string Status { get; set; } = Protocol.PresenceStatuses.Online;

    internal WebSocket Socket => _outbox.Socket;

    /// <summary>Whether agent output goes out as shared compressed frames (the client negotiated permessage-deflate).</summary>
    public bool SharesCompression => _outbox.SharesCompression;

    /// <summary>Bytes of agent output queued here and not yet taken by the socket (at most the budget, or one frame).</summary>
    internal long QueuedStreamBytes => _outbox.QueuedStreamBytes;

    internal void Join(Caller member) => Member = member;

    /// <inheritdoc cref="WebSocketOutbox.TrySend"/>
    public bool TrySend(byte[] frame) => _outbox.TrySend(frame);

    /// <inheritdoc cref="WebSocketOutbox.TryQueueStream"/>
    public bool TryQueueStream(byte[] frame, bool compressed = false) => _outbox.TryQueueStream(frame, compressed);

    /// <inheritdoc cref="WebSocketOutbox.SendStreamAsync"/>
    public Task SendStreamAsync(byte[] frame, CancellationToken cancellationToken, bool compressed = false) => _outbox.SendStreamAsync(frame, cancellationToken, compressed);

    /// <inheritdoc cref="WebSocketOutbox.Close"/>
    public void Close(WebSocketCloseStatus status, string reason, byte[]? lastFrame = null) => _outbox.Close(status, reason, lastFrame);

    /// <inheritdoc cref="WebSocketOutbox.RunAsync"/>
    public Task RunWriterAsync(CancellationToken cancellationToken) => _outbox.RunAsync(cancellationToken);

    /// <inheritdoc cref="WebSocketOutbox.Complete"/>
    internal void Complete() => _outbox.Complete();

    /// <inheritdoc cref="WebSocketOutbox.CloseDeadline"/>
    internal CancellationToken CloseDeadline => _outbox.CloseDeadline;

    public void Dispose() => _outbox.Dispose();
}
