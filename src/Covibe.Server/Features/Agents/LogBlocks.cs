using Covibe.Web;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// An agent's output older than its feed's ring, read back from the log in blocks at fixed places, so that watchers
/// catching up through the same part of the log share each block and what is rendered of it (the hub's frames), as live
/// watchers share the ring's chunks: a crowd that falls behind costs one read and one frame per block and audience, not
/// one per watcher. Block <c>k</c> nominally starts at <c>k * Size</c>, moved back to the start of the UTF-8 character
/// there, so a block is whole text, and a watcher reading on its own up to the next nominal start (cut before an
/// incomplete character, as every read of the log is) lands exactly on the next block. Holds the last few blocks read.
/// </summary>
public sealed class LogBlocks(int capacity = 16)
{
    /// <summary>Nominal bytes per block (also the most a watcher reads of the log at once).</summary>
    public const int Size = 64 * 1024;

    private readonly SharedReads<long, OutputChunk?> _blocks = new(capacity);

    /// <summary>The block that may start at <paramref name="position"/> (a character's start up to 3 bytes before a nominal start), or -1.</summary>
    public static long BlockAt(long position)
    {
        var k = (position + 3) / Size;
        return position <= k * Size ? k : -1;
    }

    /// <summary>
    /// Where a read from <paramref name="position"/> (a character's start) stops so as to land on a block: the next
    /// nominal start at least 4 bytes on, so the character there is whole (at most <see cref="Size"/> + 3 bytes on).
    /// </summary>
    public static long NextStart(long position) => ((position + 3) / Size + 1) * Size;

    /// <summary>The bytes a read of block <paramref name="k"/> covers: from 3 before its nominal start (its real start is among them) to the next nominal start.</summary>
    public static (long From, long To) Span(long k) => (Math.Max(0, k * Size - 3), (k + 1) * Size);

    /// <summary>
    /// Block <paramref name="k"/> out of <paramref name="bytes"/>, read from <see cref="Span"/>'s <c>From</c>: from the
    /// character at or before its nominal start to the last complete character before the next one.
    /// </summary>
    public static OutputChunk Cut(long k, ReadOnlySpan<byte> bytes)
    {
        var from = Span(k).From;
        var start = (int)(k * Size - from);
        while (start > 0 && (bytes[start] & 0b1100_0000) == 0b1000_0000)
        {
            start--;
        }
        // Bytes that are not text at all may leave nothing complete: then the block is all of them.
        var end = Utf8Boundary.CompleteLength(bytes);
        end = end > start ? end : bytes.Length;
        return new OutputChunk(from + start, bytes[start..end].ToArray());
    }

    /// <summary>
    /// Block <paramref name="k"/>: the one read already (or being read), else <paramref name="read"/>'s (null: it cannot be
    /// read whole here; a read that fails in any way is null too, and each watcher then reads on its own and meets the
    /// error itself). The read belongs to no one watcher: it goes on for the others when the one that started it stops
    /// waiting (<paramref name="cancellationToken"/>).
    /// </summary>
    public Task<OutputChunk?> GetAsync(long k, Func<long, Task<OutputChunk?>> read, CancellationToken cancellationToken) =>
        _blocks.GetAsync(k, async k =>
        {
            try
            {
                return await read(k);
            }
            catch (Exception)
            {
                return null;
            }
        }, cancellationToken);

    /// <summary>How many blocks were read from the log (tests and diagnostics).</summary>
    public int Reads => _blocks.Reads;

    /// <summary>How many blocks are held or being read (tests).</summary>
    public int Count => _blocks.Count;
}
