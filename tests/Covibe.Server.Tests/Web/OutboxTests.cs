using System.Net.WebSockets;
using System.Text;
using Covibe.Web;

namespace Covibe.Server.Tests;

/// <summary>
/// The one WebSocket send path (the hub's, terminals', runners', relays') on a real loopback WebSocket: order under
/// concurrent senders, flow control for output streams, the close, and the slow-client policy.
/// </summary>
public sealed class OutboxTests
{
    [Fact]
    public async Task Frames_SentFromManyThreadsAtOnce_AllArrive_EachSendersInOrder()
    {
        const int Threads = 8, PerThread = 500;
        var (client, server, sockets) = await WebSocketPair.OpenAsync();
        using var _ = sockets;
        using var connection = new Outbox(server, new OutboxOptions(QueueCapacity: Threads * PerThread));
        var writer = connection.RunAsync(CancellationToken.None);

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
        using var connection = new Outbox(server, new OutboxOptions(StreamBudgetBytes: Budget));
        var writer = connection.RunAsync(CancellationToken.None);

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
        using var connection = new Outbox(server, new OutboxOptions(QueueCapacity: 16));
        var writer = connection.RunAsync(CancellationToken.None);
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

    [Fact]
    public async Task APeerThatTakesNoMessages_IsDroppedWhenItsQueueFills_NotWaitedFor()
    {
        var (client, server, sockets) = await WebSocketPair.OpenAsync(socketBufferBytes: 16 * 1024);
        using var _ = sockets;
        using var connection = new Outbox(server, new OutboxOptions(QueueCapacity: 64));
        var writer = connection.RunAsync(CancellationToken.None);

        // The client reads nothing: 4 KiB messages fill the socket's buffers, then the queue of 64.
        var message = new byte[4096];
        var sent = 0;
        while (connection.TrySend(message))
        {
            sent++;
            sent.ShouldBeLessThan(10_000, "a queue of 64 must fill long before this");
        }

        connection.Overflowed.ShouldBeTrue();
        connection.Closing.ShouldBeTrue();
        connection.TryQueueStream(message).ShouldBeFalse();
        await Should.ThrowAsync<OperationCanceledException>(() => connection.SendStreamAsync(message, CancellationToken.None));
        // The socket was aborted, not left to the peer: the reader sees the connection end.
        server.State.ShouldBe(WebSocketState.Aborted);
        await Should.ThrowAsync<WebSocketException>(async () =>
        {
            var buffer = new byte[64 * 1024];
            while (true)
            {
                await client.ReceiveAsync(buffer, CancellationToken.None);
            }
        });
        connection.Complete();
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
