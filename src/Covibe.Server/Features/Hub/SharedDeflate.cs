using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// permessage-deflate (RFC 7692) with one compressed copy of each agent-output frame shared by every
/// watcher: each message is compressed on its own (no context takeover either way), so a chunk's
/// frame is deflated once and the same bytes go to all connections that negotiated it, instead of
/// each watcher's copy crossing the kernel in full. Browsers offer the extension by themselves.
/// The server does the WebSocket handshake itself to keep the connection's stream: the socket
/// (<see cref="ManagedWebSocket"/>) and the shared frames write through one lock.
/// </summary>
internal static class SharedDeflate
{
    private const string Extension = "permessage-deflate";
    private static readonly byte[] Tail = [0x00, 0x00, 0xff, 0xff];

    /// <summary>Whether the client offered permessage-deflate on an HTTP/1.1 upgrade this server can take over.</summary>
    public static bool Offered(HttpContext context) =>
        context.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true }
        && string.Equals(context.Request.Headers.SecWebSocketVersion, "13", StringComparison.Ordinal)
        && context.Request.Headers.SecWebSocketKey.ToString().Length > 0
        && context.Request.Headers.SecWebSocketExtensions.ToString()
            .Split(',').Any(offer => offer.Split(';')[0].Trim().Equals(Extension, StringComparison.OrdinalIgnoreCase));

    /// <summary>Answers the upgrade with the extension and returns the socket and the writer of shared frames.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "RFC 6455 defines Sec-WebSocket-Accept with SHA-1; it protects nothing.")]
    public static async Task<(WebSocket Socket, FrameWriter Frames)> AcceptAsync(HttpContext context, TimeSpan keepAlive)
    {
        var key = context.Request.Headers.SecWebSocketKey.ToString();
        context.Response.Headers.Connection = "Upgrade";
        context.Response.Headers.Upgrade = "websocket";
        context.Response.Headers.SecWebSocketAccept = Convert.ToBase64String(
            SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        context.Response.Headers.SecWebSocketExtensions = $"{Extension}; server_no_context_takeover; client_no_context_takeover";
        var opaque = await context.Features.Get<IHttpUpgradeFeature>()!.UpgradeAsync();
        var writer = new FrameWriter(opaque);
        var socket = WebSocket.CreateFromStream(writer.Stream, new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = keepAlive,
            KeepAliveTimeout = keepAlive,
            DangerousDeflateOptions = new WebSocketDeflateOptions { ClientContextTakeover = false, ServerContextTakeover = false },
        });
        return (socket, writer);
    }

    /// <summary>The payload of a compressed message: <paramref name="message"/> deflated on its own, without the 4-byte sync tail (RFC 7692 7.2.1).</summary>
    public static byte[] Compress(ReadOnlySpan<byte> message)
    {
        using var output = new MemoryStream(message.Length / 4 + 64);
        var deflate = new DeflateStream(output, CompressionLevel.Fastest, leaveOpen: true);
        deflate.Write(message);
        deflate.Flush(); // a sync flush: the data so far, ending in 00 00 ff ff
        var bytes = output.GetBuffer().AsSpan(0, (int)output.Length);
        var payload = bytes.EndsWith(Tail) ? bytes[..^Tail.Length].ToArray() : bytes.ToArray();
        deflate.Dispose();
        return payload;
    }

    /// <summary>
    /// Writes whole frames onto the connection: the socket's own and the shared compressed ones, all
    /// through <see cref="Stream"/>, whose writes take one lock so that frames never interleave.
    /// </summary>
    internal sealed class FrameWriter : IDisposable
    {
        private readonly SemaphoreSlim _lock = new(1, 1);

        public FrameWriter(Stream opaque)
        {
            Stream = new LockedStream(opaque, _lock);
        }

        public Stream Stream { get; }

        public void Dispose() => _lock.Dispose();

        /// <summary>Sends one final text frame whose payload is already deflated (RSV1 set).</summary>
        public async ValueTask WriteCompressedTextAsync(byte[] payload, CancellationToken cancellationToken)
        {
            var frame = ArrayPool<byte>.Shared.Rent(payload.Length + 10);
            try
            {
                frame[0] = 0b1100_0001; // FIN, RSV1 (compressed), text
                int header;
                if (payload.Length < 126)
                {
                    frame[1] = (byte)payload.Length;
                    header = 2;
                }
                else if (payload.Length <= ushort.MaxValue)
                {
                    frame[1] = 126;
                    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
                    header = 4;
                }
                else
                {
                    frame[1] = 127;
                    BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
                    header = 10;
                }
                // The compressed payload is small: one copy to write header and payload at once.
                payload.CopyTo(frame.AsSpan(header));
                await Stream.WriteAsync(frame.AsMemory(0, header + payload.Length), cancellationToken);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(frame);
            }
        }

        /// <summary>The connection's stream, its writes taking the frame lock; everything else is the connection's own.</summary>
        private sealed class LockedStream(Stream inner, SemaphoreSlim writing) : Stream
        {
            public override bool CanRead => inner.CanRead;
            public override bool CanSeek => inner.CanSeek;
            public override bool CanWrite => inner.CanWrite;
            public override long Length => inner.Length;

            public override long Position { get => inner.Position; set => inner.Position = value; }

            public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

            public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

            public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

            public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
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
                }
                base.Dispose(disposing);
            }
        }
    }
}
