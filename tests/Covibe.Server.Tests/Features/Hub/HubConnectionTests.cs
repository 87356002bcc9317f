using System.Net.WebSockets;
using System.Text;
using Covibe.Server.Features.Hub;

namespace Covibe.Server.Tests;

/// <summary>The hub's send side on a real loopback WebSocket: order under concurrent senders, and flow control for agent output.</summary>
public sealed class HubConnectionTests
{
    [Fact]
    public async Task Frames_SentFromManyThreadsAtOnce_AllArrive_EachSendersInOrder()
    {
        const int Threads = 8, PerThread = 500;
        var (client, server, sockets) = await WebSocketPair.OpenAsync();
        using var _ = sockets;
        using var connection = new HubConnection(server, Threads * PerThread, "test");
        var writer = connection.RunWriterAsync(CancellationToken.None);

        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(() =>
        {
            for (var n = 0; n < PerThread; n++)
            {
                connection.TrySend(Encoding.UTF8.GetBytes($"{t}:{n}")).ShouldBeTrue();
            }
        })));

        var next = new int[Threads];
        var buffer = new byte[64];
        for (var i = 0; i < Threads * PerThread; i++)
        {
            var result = await client.ReceiveAsync(buffer, CancellationToken.None);
            var parts = Encoding.UTF8.GetString(buffer, 0, result.Count).Split(':');
            var t = int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
            int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture).ShouldBe(next[t]++, $"sender {t}'s frames in order");
        }
        next.ShouldAllBe(n => n == PerThread);
        connection.Complete();
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AgentOutput_AtFourMegabytesASecond_ToAReaderThatStalls_QueuesAtMostTheBudget_ThenArrivesWhole()
    {
        const int Budget = 128 * 1024, FrameBytes = 16 * 1024;
        var (client, server, sockets) = await WebSocketPair.OpenAsync(socketBufferBytes: 64 * 1024);
        using var _ = sockets;
        using var connection = new HubConnection(server, 1024, "test", streamBudgetBytes: Budget);
        var writer = connection.RunWriterAsync(CancellationToken.None);

        // A live feed offers a 16 KiB chunk every 4 ms (4 MiB/s) for 2 s; the reader reads nothing.
        var accepted = new List<int>();
        long mostQueued = 0;
        var refused = 0;
        for (var n = 0; n < 500; n++)
        {
            var frame = new byte[FrameBytes];
            BitConverter.TryWriteBytes(frame, n).ShouldBeTrue();
            if (connection.TryQueueStream(frame))
            {
                accepted.Add(n);
            }
            else
            {
                refused++;
            }
            mostQueued = Math.Max(mostQueued, connection.QueuedStreamBytes);
            await Task.Delay(4);
        }

        // Memory is bounded: the queue never held more than the budget, and the rest was refused
        // (a live subscription then catches up from the ring or the log at the reader's pace).
        mostQueued.ShouldBeLessThanOrEqualTo(Budget);
        refused.ShouldBeGreaterThan(400);
        accepted.Count.ShouldBeLessThan(100);

        // A catch-up sender waits for room instead of being refused, and goes out once the reader reads.
        var last = new byte[FrameBytes];
        BitConverter.TryWriteBytes(last, 9999).ShouldBeTrue();
        var waiting = connection.SendStreamAsync(last, CancellationToken.None);
        await Task.Delay(200);
        waiting.IsCompleted.ShouldBeFalse("no room until the reader reads");

        var received = new List<int>();
        var buffer = new byte[FrameBytes];
        while (received.Count < accepted.Count + 1)
        {
            var count = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await client.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                count += result.Count;
            }
            while (!result.EndOfMessage);
            count.ShouldBe(FrameBytes);
            received.Add(BitConverter.ToInt32(buffer, 0));
        }
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        received.ShouldBe([.. accepted, 9999]);
        connection.QueuedStreamBytes.ShouldBe(0);
        connection.Complete();
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Close_SendsWhatWasQueuedThenTheCloseFrame_AndNothingAfter()
    {
        var (client, server, sockets) = await WebSocketPair.OpenAsync();
        using var _ = sockets;
        using var connection = new HubConnection(server, 16, "test");
        var writer = connection.RunWriterAsync(CancellationToken.None);
        connection.TrySend("before"u8.ToArray());
        connection.Close(WebSocketCloseStatus.PolicyViolation, "bye", "last"u8.ToArray());
        connection.TrySend("after"u8.ToArray()).ShouldBeTrue("dropped quietly while closing");
        connection.TryQueueStream("output"u8.ToArray()).ShouldBeFalse();

        var buffer = new byte[64];
        foreach (var expected in (string[])["before", "last"])
        {
            var result = await client.ReceiveAsync(buffer, CancellationToken.None);
            Encoding.UTF8.GetString(buffer, 0, result.Count).ShouldBe(expected);
        }
        var close = await client.ReceiveAsync(buffer, CancellationToken.None);
        close.MessageType.ShouldBe(WebSocketMessageType.Close);
        client.CloseStatus.ShouldBe(WebSocketCloseStatus.PolicyViolation);
        connection.Complete();
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
