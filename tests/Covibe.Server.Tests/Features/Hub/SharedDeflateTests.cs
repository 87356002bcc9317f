using System.IO.Compression;
using System.Net.WebSockets;
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

    [Fact]
    public async Task SharedFrames_AndTheSocketsOwnMessages_ArriveWholeAndInOrder_AtAStandardClient()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        using var connecting = new System.Net.Sockets.TcpClient();
        await connecting.ConnectAsync(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptTcpClientAsync();
        var noTakeover = new WebSocketDeflateOptions { ClientContextTakeover = false, ServerContextTakeover = false };
        using var frames = new SharedDeflate.FrameWriter(accepted.GetStream());
        using var server = WebSocket.CreateFromStream(frames.Stream, new WebSocketCreationOptions { IsServer = true, DangerousDeflateOptions = noTakeover });
        using var client = WebSocket.CreateFromStream(connecting.GetStream(), new WebSocketCreationOptions { IsServer = false, DangerousDeflateOptions = noTakeover });

        // The socket's own (per-connection compressed) messages and shared frames, from two threads at
        // once; some shared ones past 64 KiB (an 8-byte length).
        var big = string.Concat(Enumerable.Repeat("{\"type\":\"assistant\",\"text\":\"a long line of output\"}\n", 4000));
        string Own(int i) => $"own {i}";
        string Shared(int i) => i % 10 == 0 ? big + i : $"shared {i} " + new string('x', i * 40);
        var receiving = ReceiveAllAsync(client, 100);
        await Task.WhenAll(
            Task.Run(async () =>
            {
                for (var i = 0; i < 50; i++)
                {
                    await server.SendAsync(Encoding.UTF8.GetBytes(Own(i)), WebSocketMessageType.Text, true, CancellationToken.None);
                }
            }),
            Task.Run(async () =>
            {
                for (var i = 0; i < 50; i++)
                {
                    await frames.WriteCompressedTextAsync(SharedDeflate.Compress(Encoding.UTF8.GetBytes(Shared(i))), CancellationToken.None);
                }
            }));

        var received = await receiving.WaitAsync(TimeSpan.FromSeconds(30));
        received.Where(m => m.StartsWith("own ", StringComparison.Ordinal)).ShouldBe(Enumerable.Range(0, 50).Select(Own));
        received.Where(m => !m.StartsWith("own ", StringComparison.Ordinal)).ShouldBe(Enumerable.Range(0, 50).Select(Shared));
    }

    private static async Task<List<string>> ReceiveAllAsync(WebSocket client, int count)
    {
        var messages = new List<string>();
        var buffer = new byte[1024 * 1024];
        while (messages.Count < count)
        {
            var length = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await client.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                length += result.Count;
            }
            while (!result.EndOfMessage);
            messages.Add(Encoding.UTF8.GetString(buffer, 0, length));
        }
        return messages;
    }
}
