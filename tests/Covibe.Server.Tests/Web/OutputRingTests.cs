using System.Text;
using Covibe.Terminals;
using Covibe.Web;

namespace Covibe.Server.Tests;

/// <summary>The one positioned output buffer, behind agents' output and terminals' scrollback.</summary>
public sealed class OutputRingTests
{
    [Fact]
    public void Bytes_AreReadBackByPosition_AcrossTheChunksTheyCameIn()
    {
        var ring = new OutputRing(capacity: 1024);
        ring.Append("hello "u8).ShouldNotBeNull().Start.ShouldBe(0);
        ring.Append("wide "u8).ShouldNotBeNull().Start.ShouldBe(6);
        ring.Append("world"u8).ShouldNotBeNull().End.ShouldBe(16);

        ring.End.ShouldBe(16);
        ring.Start.ShouldBe(0);
        var buffer = new byte[32];
        Encoding.ASCII.GetString(buffer, 0, ring.Copy(3, buffer)).ShouldBe("lo wide world");
        Encoding.ASCII.GetString(buffer, 0, ring.Copy(3, buffer.AsSpan(0, 5))).ShouldBe("lo wi");
        ring.Copy(16, buffer).ShouldBe(0);
        ring.ChunkAt(8).ShouldNotBeNull().Start.ShouldBe(6);
        ring.ChunkAt(16).ShouldBeNull("not written yet");
        ((char)ring.At(11)).ShouldBe('w');
    }

    [Fact]
    public void OldChunks_DropOff_ButTheLastCapacityBytesAreAlwaysThere()
    {
        var ring = new OutputRing(capacity: 100);
        var data = new byte[30];
        for (var i = 0; i < 1000; i++)
        {
            ring.Append(data);
            // A reader that is at most `capacity` behind always finds its bytes (a terminal's viewer may lag that much).
            (ring.End - ring.Start).ShouldBeGreaterThanOrEqualTo(Math.Min(ring.End, 100));
            (ring.End - ring.Start).ShouldBeLessThan(100 + 30, "no more than the capacity and one chunk is held");
        }
        ring.End.ShouldBe(30_000);
        ring.ChunkAt(ring.Start - 1).ShouldBeNull("older than the ring: read the log");
        var buffer = new byte[100];
        ring.Copy(ring.End - 100, buffer).ShouldBe(100);
        for (var position = ring.Start; position < ring.End; position++)
        {
            ring.ChunkAt(position).ShouldNotBeNull().Start.ShouldBeLessThanOrEqualTo(position);
        }
    }

    [Fact]
    public void AnAppendAtAPosition_SkipsWhatIsThere_AndAGapDropsTheRing()
    {
        var ring = new OutputRing(capacity: 1024);
        ring.Append(0, "abcdef"u8);
        ring.Append(0, "abcdef"u8).ShouldBeNull("a copy that arrives twice adds nothing");
        var tail = ring.Append(4, "efgh"u8).ShouldNotBeNull();
        (tail.Start, Encoding.ASCII.GetString(tail.Data)).ShouldBe((6L, "gh"));

        // Bytes from 8 to 20 never came here: the ring goes on at 20, and readers take the rest from the log.
        ring.Append(20, "xyz"u8).ShouldNotBeNull().Start.ShouldBe(20);
        ring.Start.ShouldBe(20);
        ring.ChunkAt(5).ShouldBeNull();
        ring.End.ShouldBe(23);
    }

    [Fact]
    public void SmallAppends_JoinTheLastChunk_UnlessItWasRenderedForReaders()
    {
        var terminal = new OutputRing(capacity: 1 << 20, joinBelow: 4096);
        for (var i = 0; i < 1000; i++)
        {
            terminal.Append("x"u8); // a shell's echo, a byte at a time
        }
        terminal.ChunkAt(0).ShouldNotBeNull().Data.Length.ShouldBe(1000, "one chunk, not a thousand");

        var rendered = terminal.ChunkAt(999).ShouldNotBeNull();
        rendered.Rendering(0, "state", (chunk, state, slot) => state).ShouldBe("state");
        terminal.Append("y"u8).ShouldNotBeNull().Start.ShouldBe(1000, "a rendered chunk is shared as it is: new bytes start a new one");
        rendered.Data.Length.ShouldBe(1000);

        var agent = new OutputRing(capacity: 1 << 20);
        agent.Append("a"u8);
        agent.Append("b"u8).ShouldNotBeNull().Start.ShouldBe(1, "an agent's chunks never join: each is offered to watchers as it comes");
    }

    [Fact]
    public void WhereTheRingWillStart_AfterAnAppendOnItsWay_IsWhereItDoes()
    {
        foreach (var more in (int[])[0, 1, 7, 30, 31, 64, 100, 250])
        {
            var ring = new OutputRing(capacity: 100);
            for (var i = 0; i < 9; i++)
            {
                ring.Append(new byte[17]);
            }
            var said = ring.StartAfter(more);
            if (more > 0)
            {
                ring.Append(new byte[more]);
            }
            ring.Start.ShouldBe(said, $"appending {more} bytes");
        }
    }

    [Fact]
    public void ATerminalViewer_ReattachingAfterTheScrollbackWrapped_StartsAtTheOldestWholeCharacter()
    {
        var output = new TerminalOutput(capacity: 64, maxLag: 64);
        // "éa" over and over, read from the PTY in pieces that split each "é": every piece starts inside a character.
        output.Append([0xC3]);
        for (var i = 0; i < 100; i++)
        {
            output.Append([0xA9, (byte)'a', 0xC3]);
        }
        using var cursor = output.Attach(since: 0);
        cursor.Truncated.ShouldBeTrue();
        var buffer = new byte[256];
        cursor.Take(buffer, out var count).ShouldBe(TakeState.Data);
        var text = Encoding.UTF8.GetString(buffer, 0, count);
        text.ShouldNotContain("\uFFFD");
        text.ShouldStartWith("a");
        count.ShouldBeGreaterThanOrEqualTo(60, "at least the last 64 bytes were kept");
        cursor.Position.ShouldBe(output.End - 1, "the last byte starts a character whose rest has not come: it waits for it");
    }

    [Fact]
    public void ATerminalViewer_AttachingWhileTheShellsReadIsUnderWay_ReadsFromWhereItWasTold()
    {
        // The scrollback is full and nobody watches: the shell may read as much as it likes, and does.
        var output = new TerminalOutput(capacity: 64, maxLag: 32);
        for (var i = 0; i < 8; i++)
        {
            output.Append("covibe!\n"u8);
        }
        output.WaitForSpace(48, TimeSpan.FromSeconds(5), CancellationToken.None).ShouldBe(48);

        // A viewer attaches from the start before those bytes are appended (a teammate reattaching mid-run).
        using var cursor = output.Attach(since: 0);
        for (var i = 0; i < 6; i++)
        {
            output.Append("shared\n\n"u8);
        }

        // It reads from where its attachment said, every byte from there on (it was placed at the oldest byte the
        // append would keep: before, it pointed into what the append dropped, and the pump failed without a word).
        var buffer = new byte[256];
        cursor.Take(buffer, out var count).ShouldBe(TakeState.Data);
        cursor.Truncated.ShouldBeTrue();
        (cursor.From + count).ShouldBe(output.End);
        Encoding.UTF8.GetString(buffer, 0, count).ShouldBe(string.Concat(Enumerable.Repeat("covibe!\n", 2)) + string.Concat(Enumerable.Repeat("shared\n\n", 6)));
    }
}
