using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Timeouts;

namespace Covibe.Web;

/// <summary>
/// A server-side WebSocket whose connection Covibe keeps, so that <see cref="PreparedFrame"/>s (made once for many
/// connections) go onto it as they are, between the socket's own frames (replies, pings, pongs, the close). The server
/// answers the HTTP/1.1 upgrade itself for that (the framework's accept hides the stream); it may also agree to
/// permessage-deflate without context takeover (RFC 7692), so that one deflated copy of a frame serves every connection
/// that negotiated it. A request that cannot be upgraded that way (HTTP/2's extended CONNECT) gets the framework's
/// WebSocket, and its sink writes each prepared frame's payload as a message.
/// </summary>
public sealed class FramedWebSocket : IDisposable
{
    private const string Deflate = "permessage-deflate";

    private FramedWebSocket(WebSocket socket, FrameWriter? frames)
    {
        Socket = socket;
        Frames = frames;
    }

    public WebSocket Socket { get; }

    /// <summary>Writes whole frames between the socket's own; null for the framework's WebSocket.</summary>
    public FrameWriter? Frames { get; }

    /// <summary>
    /// Accepts the WebSocket request of <paramref name="context"/> (one that <c>context.WebSockets.IsWebSocketRequest</c>
    /// found valid: the framework checks the handshake's headers), with shared compression if
    /// <paramref name="offerCompression"/> and the client offered it.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "RFC 6455 defines Sec-WebSocket-Accept with SHA-1; it protects nothing.")]
    public static async Task<FramedWebSocket> AcceptAsync(HttpContext context, TimeSpan keepAlive, bool offerCompression)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            throw new InvalidOperationException("Not a WebSocket request: check context.WebSockets.IsWebSocketRequest first.");
        }
        if (context.Features.Get<IHttpUpgradeFeature>() is not { IsUpgradableRequest: true } upgrade)
        {
            var accepted = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { KeepAliveInterval = keepAlive, KeepAliveTimeout = keepAlive });
            return new FramedWebSocket(accepted, null);
        }
        var key = context.Request.Headers.SecWebSocketKey.ToString();
        var compressed = offerCompression && Offered(context.Request.Headers.SecWebSocketExtensions.ToString());
        context.Response.Headers.Connection = "Upgrade";
        context.Response.Headers.Upgrade = "websocket";
        context.Response.Headers.SecWebSocketAccept = Convert.ToBase64String(
            SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        if (compressed)
        {
            context.Response.Headers.SecWebSocketExtensions = $"{Deflate}; server_no_context_takeover; client_no_context_takeover";
        }
        var opaque = await upgrade.UpgradeAsync();
        context.Features.Get<IHttpRequestTimeoutFeature>()?.DisableTimeout();
        WebSocket? socket = null;
        // Kestrel's upgraded stream does nothing when disposed: a socket that aborts (a slow peer dropped, a ping gone
        // unanswered) must abort the connection, or a write stuck on a peer that does not read would hold it forever
        // (as ASP.NET Core's own accept does).
        var frames = new FrameWriter(opaque, compressed, () =>
        {
            if (socket?.State == WebSocketState.Aborted)
            {
                context.Abort();
            }
        });
        socket = WebSocket.CreateFromStream(frames.Stream, new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = keepAlive,
            KeepAliveTimeout = keepAlive,
            DangerousDeflateOptions = compressed ? new WebSocketDeflateOptions { ClientContextTakeover = false, ServerContextTakeover = false } : null,
        });
        return new FramedWebSocket(socket, frames);
    }

    /// <summary>Where an <see cref="Outbox"/> writes to this socket.</summary>
    public WebSocketSink Sink() => new(Socket, Frames);

    public void Dispose()
    {
        Socket.Dispose();
        Frames?.Dispose();
    }

    /// <summary>Whether a <c>Sec-WebSocket-Extensions</c> header offers permessage-deflate.</summary>
    internal static bool Offered(string extensions) =>
        extensions.Split(',').Any(offer => offer.Split(';')[0].Trim().Equals(Deflate, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// Writes whole frames onto a connection: the socket's own and prepared ones, all through <see cref="Stream"/>, whose
/// writes take one lock so that frames never interleave.
/// </summary>
public sealed class FrameWriter : IDisposable
{
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <param name="sharesCompression">Whether the socket agreed to permessage-deflate without context takeover: compressed frames may go out here.</param>
    /// <param name="disposed">Called when the stream is disposed (by the socket, when it closes or aborts).</param>
    public FrameWriter(Stream opaque, bool sharesCompression = false, Action? disposed = null)
    {
        Stream = new LockedStream(opaque, _lock, disposed);
        SharesCompression = sharesCompression;
    }

    /// <summary>Whether permessage-deflate was agreed: <see cref="PreparedFrame.Compressed"/> frames may go out here.</summary>
    public bool SharesCompression { get; }

    /// <summary>The connection's stream, its writes taking the frame lock; everything else is the connection's own.</summary>
    public Stream Stream { get; }

    public void Dispose() => _lock.Dispose();

    /// <summary>Writes <paramref name="frame"/>'s bytes as they are.</summary>
    public ValueTask WriteAsync(PreparedFrame frame, CancellationToken cancellationToken) => Stream.WriteAsync(frame.Bytes, cancellationToken);

    private sealed class LockedStream(Stream inner, SemaphoreSlim writing, Action? disposed) : Stream
    {
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            // Uncontended (the usual case: one outbox writes, the socket's pings are rare), the lock and the write both
            // complete at once and nothing is allocated.
            if (writing.Wait(0, CancellationToken.None))
            {
                ValueTask write;
                try
                {
                    write = inner.WriteAsync(buffer, cancellationToken);
                }
                catch
                {
                    writing.Release();
                    throw;
                }
                if (write.IsCompletedSuccessfully)
                {
                    write.GetAwaiter().GetResult();
                    writing.Release();
                    return ValueTask.CompletedTask;
                }
                return ReleaseAfterAsync(write);
            }
            return WriteLockedAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count)
        {
            writing.Wait();
            try
            {
                inner.Write(buffer, offset, count);
            }
            finally
            {
                writing.Release();
            }
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => inner.SetLength(value);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                disposed?.Invoke();
            }
            base.Dispose(disposing);
        }

        private async ValueTask ReleaseAfterAsync(ValueTask write)
        {
            try
            {
                await write;
            }
            finally
            {
                writing.Release();
            }
        }

        private async ValueTask WriteLockedAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
        {
            await writing.WaitAsync(cancellationToken);
            try
            {
                await inner.WriteAsync(buffer, cancellationToken);
            }
            finally
            {
                writing.Release();
            }
        }
    }
}
