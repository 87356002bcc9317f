using System.Net.WebSockets;
using System.Text;
using Covibe.Server.Features.Hub;
using Covibe.Web;

namespace Covibe.Server.Tests;

/// <summary>Frames made once for many connections (<see cref="PreparedFrame"/>) and written as they are, read by a standard client.</summary>
public sealed class FramedWebSocketTests
{
    [Theory]
    [InlineData(0, 2)]
    [InlineData(125, 2)]
    [InlineData(126, 4)]
    [InlineData(65535, 4)]
    [InlineData(65536, 10)]
    public void Header_UsesTheShortestLengthThatFits_AsRfc6455Requires(int length, int header)
    {
        var frame = PreparedFrame.Text(new byte[length]);
        frame.HeaderLength.ShouldBe(header);
        frame.Bytes.Length.ShouldBe(header + length);
        frame.Bytes[0].ShouldBe((byte)0x81, "FIN and text, no RSV bit");
        (frame.Bytes[1] & 0x80).ShouldBe(0, "a server's frames are not masked");
        PreparedFrame.Text(new byte[length], compressed: true).Bytes[0].ShouldBe((byte)0xc1, "RSV1 marks a compressed message");
    }

    [Fact]
    public async Task PreparedFrames_AndTheSocketsOwnMessages_ArriveWholeAndInOrder_AtAStandardClient()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        using var connecting = new System.Net.Sockets.TcpClient();
        await connecting.ConnectAsync(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptTcpClientAsync();
        var noTakeover = new WebSocketDeflateOptions { ClientContextTakeover = false, ServerContextTakeover = false };
        using var frames = new FrameWriter(accepted.GetStream(), sharesCompression: true);
        using var server = WebSocket.CreateFromStream(frames.Stream, new WebSocketCreationOptions { IsServer = true, DangerousDeflateOptions = noTakeover });
        using var client = WebSocket.CreateFromStream(connecting.GetStream(), new WebSocketCreationOptions { IsServer = false, DangerousDeflateOptions = noTakeover });

        // The socket's own (per-connection compressed) messages and prepared frames, plain and compressed, from two
        // threads at once; some past 64 KiB (an 8-byte length).
        var big = string.Concat(Enumerable.Repeat("{\"type\":\"assistant\",\"text\":\"a long line of output\"}\n", 4000));
        string Own(int i) => $"own {i}";
        string Shared(int i) => i % 10 == 0 ? big + i : $"shared {i} " + new string('x', i * 40);
        PreparedFrame Prepared(int i) => i % 2 == 0
            ? PreparedFrame.Text(SharedDeflate.Compress(Encoding.UTF8.GetBytes(Shared(i))), compressed: true)
            : PreparedFrame.Text(Encoding.UTF8.GetBytes(Shared(i)));
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
                    await frames.WriteAsync(Prepared(i), CancellationToken.None);
                }
            }));

        var received = await receiving.WaitAsync(TimeSpan.FromSeconds(30));
        received.Where(m => m.StartsWith("own ", StringComparison.Ordinal)).ShouldBe(Enumerable.Range(0, 50).Select(Own));
        received.Where(m => !m.StartsWith("own ", StringComparison.Ordinal)).ShouldBe(Enumerable.Range(0, 50).Select(Shared));
    }

    [Fact]
    public async Task AnOutbox_RefusesACompressedFrame_ForASocketThatDidNotNegotiateIt()
    {
        var (client, server, sockets) = await WebSocketPair.OpenAsync();
        using var _ = sockets;
        using var outbox = new Outbox(server);
        Should.Throw<ArgumentException>(() => outbox.TryQueueStream(PreparedFrame.Text("x"u8, compressed: true)));
        // The same frame uncompressed goes out as its payload through the framework's socket.
        outbox.TryQueueStream(PreparedFrame.Text("x"u8)).ShouldBeTrue();
        (await ReceiveAllAsync(client, 1).WaitAsync(TimeSpan.FromSeconds(10))).ShouldBe(["x"]);
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
