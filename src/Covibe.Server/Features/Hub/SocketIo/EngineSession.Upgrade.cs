using System.Net.WebSockets;
using Covibe.Web;

namespace Covibe.Server.Features.Hub.SocketIo;

/// <summary>An Engine.IO session's upgrade from long polling to a WebSocket: the probe, the switch, and giving up.</summary>
internal sealed partial class EngineSession
{
    /// <summary>
    /// A second transport claims the session (a WebSocket with its id): false if it already has one. Until
    /// <see cref="CompleteUpgradeAsync"/>, packets still go to polling.
    /// </summary>
    public bool TryBeginUpgrade(WebSocket socket)
    {
        lock (_gate)
        {
            if (_webSocket is not null || _closed || _closing)
            {
                return false;
            }
            _webSocket = socket;
            return true;
        }
    }

    /// <summary>The client probed the new WebSocket: answer there, and let a waiting GET go with a noop.</summary>
    public ValueTask ProbeAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _upgrading = true;
            WakeGet();
        }
        // Nothing else writes to this socket until the upgrade completes.
        return new WebSocketSink(socket).SendAsync(SocketIoCodec.ProbePong, cancellationToken);
    }

    /// <summary>
    /// The client sent <c>upgrade</c>: packets go to the WebSocket from now on, the ones polling did not take first. If the
    /// session was closed meanwhile (its close is among what polling held, and the client stopped polling to upgrade), what
    /// was held goes out here, then the WebSocket closes.
    /// </summary>
    public async Task CompleteUpgradeAsync(FramedWebSocket socket, CancellationToken cancellationToken)
    {
        var sink = socket.Sink();
        List<ReadOnlyMemory<byte>>? last = null;
        lock (_gate)
        {
            _socket = sink;
            if (_closed || _closing)
            {
                last = _held;
            }
            else
            {
                _leftovers = _held.Count > 0 ? _held : null;
            }
            _held = [];
            _heldBytes = 0;
            _room?.TrySetResult();
            _room = null;
            WakeGet();
        }
        if (last is null)
        {
            return;
        }
        // The outbox has sent its close (to polling): nothing else writes to this socket any more.
        foreach (var packet in last)
        {
            await sink.SendAsync(packet, cancellationToken);
        }
        await sink.CloseAsync(WebSocketCloseStatus.NormalClosure, "closed", cancellationToken);
        End("closed");
    }

    /// <summary>A WebSocket that tried to upgrade went away before it did: the session goes on polling.</summary>
    public void AbandonUpgrade(WebSocket socket)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_webSocket, socket) && _socket is null)
            {
                _webSocket = null;
                _upgrading = false;
            }
        }
    }
}
