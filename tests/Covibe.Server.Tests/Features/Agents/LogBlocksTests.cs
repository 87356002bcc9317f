using System.Text;
using System.Text.Unicode;
using Covibe.Server.Features.Agents;
using Covibe.Web;

namespace Covibe.Server.Tests;

/// <summary>Blocks of an agent's log shared by the watchers that catch up through it (fast unit tests, no server).</summary>
public sealed class LogBlocksTests
{
    // Lines with 2-, 3- and 4-byte characters at shifting places, so nominal block starts fall inside characters.
    private static readonly byte[] Text = Encoding.UTF8.GetBytes(string.Concat(
        Enumerable.Range(0, 20_000).Select(i => $"{{\"text\":\"step {i}: héllo 漢字 🎉{new string('x', i % 7)}\"}}\n")));

    [Fact]
    public void Blocks_TileTheLog_EachWholeText_StartingAtACharacterBeforeItsNominalStart()
    {
        var blocks = Enumerable.Range(0, (int)(Text.Length / LogBlocks.Size) - 1).Select(k => Block(k)).ToList();
        blocks[0].Start.ShouldBe(0);
        for (var k = 0; k < blocks.Count; k++)
        {
            Utf8.IsValid(blocks[k].Data).ShouldBeTrue($"block {k} is whole text");
            blocks[k].Data.ShouldBe(Text[(int)blocks[k].Start..(int)blocks[k].End]);
            (k * (long)LogBlocks.Size - blocks[k].Start).ShouldBeInRange(0, 3);
            LogBlocks.BlockAt(blocks[k].Start).ShouldBe(k);
            if (k > 0)
            {
                blocks[k].Start.ShouldBe(blocks[k - 1].End, "no gap, no overlap");
            }
        }
        blocks.Count(b => b.Start % LogBlocks.Size != 0).ShouldBeGreaterThan(0, "some nominal starts fell inside a character");
    }

    [Fact]
    public void AWatcherReadingOnItsOwn_LandsOnTheNextBlock_FromAnyCharacter()
    {
        // A watcher that subscribed anywhere reads up to the next nominal start, cut before an incomplete character (as
        // the pump does), and lands exactly where the next block starts: from there it shares.
        var random = new Random(28);
        for (var i = 0; i < 2000; i++)
        {
            var position = random.Next(0, Text.Length - 3 * LogBlocks.Size);
            while ((Text[position] & 0xc0) == 0x80)
            {
                position++;
            }
            var to = (int)LogBlocks.NextStart(position);
            (to - position).ShouldBeInRange(4, LogBlocks.Size + 3);
            var landed = position + Utf8Boundary.CompleteLength(Text.AsSpan(position, to - position));
            var k = LogBlocks.BlockAt(landed);
            k.ShouldBeGreaterThan(0);
            Block(k).Start.ShouldBe(landed);
        }
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(65533, 1)]
    [InlineData(65536, 1)]
    [InlineData(65537, -1)]
    [InlineData(65532, -1)]
    [InlineData(3 * 65536 - 1, 3)]
    public void BlockAt_IsTheBlockThatMayStartThere(long position, long block) => LogBlocks.BlockAt(position).ShouldBe(block);

    [Fact]
    public async Task ABlock_IsReadOnce_ForEveryoneWhoAsksAtOnce_AndTheOldestGoFirst()
    {
        var blocks = new LogBlocks(capacity: 2);
        var release = new TaskCompletionSource();
        var reads = 0;
        async Task<OutputChunk?> Read(long k)
        {
            Interlocked.Increment(ref reads);
            await release.Task;
            return Block(k);
        }
        var waiting = Enumerable.Range(0, 10).Select(_ => blocks.GetAsync(1, Read, CancellationToken.None)).ToList();
        release.SetResult();
        var got = await Task.WhenAll(waiting);
        got.Distinct().Count().ShouldBe(1, "every watcher shares one block (and so its frames)");
        reads.ShouldBe(1);
        await blocks.GetAsync(2, Read, CancellationToken.None);
        await blocks.GetAsync(3, Read, CancellationToken.None);
        blocks.Count.ShouldBe(2);
        (await blocks.GetAsync(1, Read, CancellationToken.None)).ShouldNotBeSameAs(got[0], "the oldest was let go and read again");
        blocks.Reads.ShouldBe(4);
    }

    [Fact]
    public async Task AFailedRead_IsNull_SoEachWatcherReadsOnItsOwn()
    {
        var blocks = new LogBlocks();
        (await blocks.GetAsync(0, _ => throw new IOException("gone"), CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task AReadThatFailsUnexpectedly_LeavesNoWatcherWaiting()
    {
        var blocks = new LogBlocks();
        var waiting = blocks.GetAsync(0, _ => Task.FromException<OutputChunk?>(new FormatException("a bug")), CancellationToken.None);
        (await waiting.WaitAsync(TimeSpan.FromSeconds(10))).ShouldBeNull();
    }

    private static OutputChunk Block(long k)
    {
        var (from, to) = LogBlocks.Span(k);
        return LogBlocks.Cut(k, Text.AsSpan((int)from, (int)(to - from)));
    }
}
