using System.IO.Compression;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// permessage-deflate (RFC 7692) with one compressed copy of each agent-output frame shared by every watcher: each message
/// is compressed on its own (no context takeover either way, as <see cref="Covibe.Web.FramedWebSocket"/> negotiates), so a
/// chunk's frame is deflated once and the same bytes go to all connections that negotiated it, instead of each watcher's
/// copy crossing the kernel in full. Browsers offer the extension by themselves.
/// </summary>
internal static class SharedDeflate
{
    private static readonly byte[] Tail = [0x00, 0x00, 0xff, 0xff];

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
}
