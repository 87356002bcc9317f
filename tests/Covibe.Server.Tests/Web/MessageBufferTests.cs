using System.Net.WebSockets;
using Covibe.Web;

namespace Covibe.Server.Tests;

/// <summary>The receive buffer hub and terminal connections share: small while idle, bounded, exact (a WebSocket pair over loopback TCP).</summary>
public sealed class MessageBufferTests
{
    [Fact]
    public async Task ReceiveAsync_GrowsForLargerMessages_KeepsThemExact_AndRefusesOnlyWhatExceedsTheLimit()
    {
        const int Max = 20_000;
        var (client, server, sockets) = await WebSocketPair.OpenAsync();
        using var _ = sockets;
        using var buffer = new MessageBuffer(Max);
        foreach (var size in (int[])[10, 1024, 1025, 5_000, Max])
        {
            var sent = Enumerable.Range(0, size).Select(i => (byte)('a' + i % 26)).ToArray();
            await client.SendAsync(sent, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            var received = await buffer.ReceiveAsync(server, CancellationToken.None);
            received.TooLarge.ShouldBeFalse($"{size} bytes fit");
            buffer.Message(received.Count).ToArray().ShouldBe(sent);
        }

        // One byte over, sent in pieces: read to its end and reported, and the next message is intact.
        for (var i = 0; i < 4; i++)
        {
            await client.SendAsync(new byte[(Max / 4) + (i == 3 ? 1 : 0)], WebSocketMessageType.Text, endOfMessage: i == 3, CancellationToken.None);
        }
        (await buffer.ReceiveAsync(server, CancellationToken.None)).TooLarge.ShouldBeTrue();
        await client.SendAsync("{\"type\":\"after\"}"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var after = await buffer.ReceiveAsync(server, CancellationToken.None);
        System.Text.Encoding.UTF8.GetString(buffer.Message(after.Count).Span).ShouldBe("{\"type\":\"after\"}");

        await client.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        (await buffer.ReceiveAsync(server, CancellationToken.None)).Binary.ShouldBeTrue();
        await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        (await buffer.ReceiveAsync(server, CancellationToken.None)).Closed.ShouldBeTrue();
    }
}
