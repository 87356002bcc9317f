namespace Covibe.Web;

/// <summary>
/// The recent part of a positioned byte stream, the one buffer behind an agent's output and a terminal's scrollback.
/// Every byte has a position (how many bytes came before it), which clients resume from; the ring keeps at least the
/// last <c>capacity</c> bytes (and less than that plus one chunk), as the chunks they were appended in, so that a chunk
/// can be handed to many readers and rendered once for all of them (<see cref="OutputChunk.Rendering{TState, T}"/>).
/// Appends that are small join the last chunk while it stays under <c>joinBelow</c> bytes and nobody rendered it (a
/// terminal's echo comes a byte at a time; an agent's chunks, offered to watchers as they come, never join).
/// Not thread-safe: its owner calls it under its own lock.
/// </summary>
public sealed class OutputRing
{
    private readonly List<OutputChunk> _chunks = [];
    private readonly int _capacity;
    private readonly int _joinBelow;
    // Chunks before this index have dropped off (cleared; removed in bulk now and then).
    private int _head;
    private long _held;

    /// <param name="start">The position of the first byte this ring will see (a stream followed from its middle).</param>
    public OutputRing(int capacity, long start = 0, int joinBelow = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        // Joined chunks stay small beside the capacity, so the scrollback is not held in a few big pieces.
        _joinBelow = Math.Min(joinBelow, capacity / 16);
        End = start;
    }

    /// <summary>The position after the last byte: the stream's length so far.</summary>
    public long End { get; private set; }

    /// <summary>The oldest position still held (<see cref="End"/> when nothing is).</summary>
    public long Start => _head < _chunks.Count ? _chunks[_head].Start : End;

    /// <summary>
    /// Adds bytes that start at position <paramref name="at"/>: what is held already is skipped (a copy that arrives
    /// twice is harmless), and a start past the end drops everything first (the bytes between were not seen here).
    /// Returns the chunk that now ends the ring, or null if nothing was new.
    /// </summary>
    public OutputChunk? Append(long at, ReadOnlySpan<byte> data)
    {
        if (at + data.Length <= End)
        {
            return null;
        }
        if (at > End)
        {
            SkipTo(at);
        }
        data = data[(int)(End - at)..];
        OutputChunk chunk;
        if (_joinBelow > 0 && _head < _chunks.Count && _chunks[^1] is { Unrendered: true } last && last.Data.Length + data.Length <= _joinBelow)
        {
            var joined = new byte[last.Data.Length + data.Length];
            last.Data.CopyTo(joined, 0);
            data.CopyTo(joined.AsSpan(last.Data.Length));
            chunk = new OutputChunk(last.Start, joined);
            _chunks[^1] = chunk;
        }
        else
        {
            chunk = new OutputChunk(End, data.ToArray());
            _chunks.Add(chunk);
        }
        End += data.Length;
        _held += data.Length;
        while (_chunks.Count - _head > 1 && _held - _chunks[_head].Data.Length >= _capacity)
        {
            _held -= _chunks[_head].Data.Length;
            _chunks[_head++] = null!;
        }
        if (_head > 64 && _head * 2 > _chunks.Count)
        {
            _chunks.RemoveRange(0, _head);
            _head = 0;
        }
        return chunk;
    }

    /// <summary>
    /// The oldest position that will still be held once <paramref name="more"/> bytes are appended (by the rule
    /// <see cref="Append(long, ReadOnlySpan{byte})"/> drops chunks by; an append that joins the last chunk drops no more):
    /// where a reader may start while an append of that size is on its way.
    /// </summary>
    public long StartAfter(int more)
    {
        var held = _held + more;
        var index = _head;
        // The appended bytes as a chunk of their own: every chunk held now may go while the rest still fill the capacity.
        while (index < _chunks.Count && held - _chunks[index].Data.Length >= _capacity)
        {
            held -= _chunks[index].Data.Length;
            index++;
        }
        return index < _chunks.Count ? _chunks[index].Start : End;
    }

    /// <summary>Adds bytes at the end.</summary>
    public OutputChunk? Append(ReadOnlySpan<byte> data) => Append(End, data);

    /// <summary>Drops what is held and goes on at <paramref name="position"/> (output this ring did not see).</summary>
    public void SkipTo(long position)
    {
        _chunks.Clear();
        _head = 0;
        _held = 0;
        End = position;
    }

    /// <summary>The chunk holding <paramref name="position"/>, or null if it is older than the ring or not written yet.</summary>
    public OutputChunk? ChunkAt(long position)
    {
        var index = IndexOf(position);
        return index < 0 ? null : _chunks[index];
    }

    /// <summary>The byte at <paramref name="position"/>, which the ring holds.</summary>
    public byte At(long position)
    {
        var index = IndexOf(position);
        ArgumentOutOfRangeException.ThrowIfNegative(index, nameof(position));
        var chunk = _chunks[index];
        return chunk.Data[(int)(position - chunk.Start)];
    }

    /// <summary>Copies bytes from <paramref name="position"/> (which the ring holds) into <paramref name="buffer"/>, as many as fit and are there.</summary>
    public int Copy(long position, Span<byte> buffer)
    {
        if (position >= End || buffer.IsEmpty)
        {
            return 0;
        }
        var index = IndexOf(position);
        ArgumentOutOfRangeException.ThrowIfNegative(index, nameof(position));
        var copied = 0;
        for (var offset = (int)(position - _chunks[index].Start); index < _chunks.Count && copied < buffer.Length; index++, offset = 0)
        {
            var part = _chunks[index].Data.AsSpan(offset);
            part = part[..Math.Min(part.Length, buffer.Length - copied)];
            part.CopyTo(buffer[copied..]);
            copied += part.Length;
        }
        return copied;
    }

    private int IndexOf(long position)
    {
        int low = _head, high = _chunks.Count - 1;
        while (low <= high)
        {
            var middle = low + ((high - low) / 2);
            var chunk = _chunks[middle];
            if (position < chunk.Start)
            {
                high = middle - 1;
            }
            else if (position >= chunk.End)
            {
                low = middle + 1;
            }
            else
            {
                return middle;
            }
        }
        return -1;
    }
}

/// <summary>Bytes of a positioned stream from <see cref="Start"/>, as they were appended; never changed once made.</summary>
public sealed class OutputChunk(long start, byte[] data)
{
    /// <summary>How many renderings a chunk keeps (the hub's: owner or teammate, by each form of frame: plain, deflated, Socket.IO).</summary>
    public const int RenderingSlots = 6;

    private object?[]? _renderings;

    public long Start { get; } = start;

    public byte[] Data { get; } = data;

    public long End => Start + Data.Length;

    internal bool Unrendered => Volatile.Read(ref _renderings) is null;

    /// <summary>
    /// What a reader makes of this chunk (a frame for one audience) in <paramref name="slot"/>, made at most about once
    /// and shared by every reader: the one expensive step of a fan-out is done once per chunk, not once per reader.
    /// </summary>
    public T Rendering<TState, T>(int slot, TState state, Func<OutputChunk, TState, int, T> render) where T : class
    {
        // A race makes a rendering twice at worst; both are the same.
        var renderings = Volatile.Read(ref _renderings) ?? Interlocked.CompareExchange(ref _renderings, new object?[RenderingSlots], null) ?? _renderings!;
        return (T)(Volatile.Read(ref renderings[slot]) ?? Interlocked.CompareExchange(ref renderings[slot], render(this, state, slot), null) ?? renderings[slot]!);
    }
}
