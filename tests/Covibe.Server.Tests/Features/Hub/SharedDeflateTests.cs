using System.IO.Compression;
using System.Text;
using Covibe.Server.Features.Hub;

namespace Covibe.Server.Tests;

/// <summary>Agent output compressed once for every watcher that negotiated permessage-deflate (RFC 7692).</summary>
public sealed class SharedDeflateTests
{
    [Fact]
    public void Compress_GivesAPayloadThatInflatesToTheMessage_WithTheSyncTailRemoved()
    {
        var message = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"type\":\"assistant\",\"text\":\"step\"}\n", 500)));
        var payload = SharedDeflate.Compress(message);
        payload.Length.ShouldBeLessThan(message.Length / 10, "stream-json compresses well");
        payload.AsSpan().EndsWith(new byte[] { 0, 0, 0xff, 0xff }).ShouldBeFalse();

        // A receiver appends 00 00 ff ff and inflates (RFC 7692 7.2.2).
        using var input = new MemoryStream([.. payload, 0x00, 0x00, 0xff, 0xff]);
        using var inflate = new DeflateStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        inflate.CopyTo(output);
        output.ToArray().ShouldBe(message);
    }
}
