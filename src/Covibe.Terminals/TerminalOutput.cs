using Covibe.Web;

namespace Covibe.Terminals;

/// <summary>
/// A terminal's output: one byte stream with absolute positions, of which at least the last
/// <c>capacity</c> bytes are kept (the scrollback, an <see cref="OutputRing"/> as behind an agent's
/// output). Viewers read through cursors. The producer
/// (the PTY reader) may run at most <c>maxLag</c> bytes ahead of the slowest viewer; beyond that
/// it waits, so the PTY fills and a fast program (<c>yes</c>, <c>cat</c> of a big file) is held
/// back instead of memory growing. With no viewer the producer never waits and old bytes drop
/// off the scrollback. A viewer that holds the producer back for too long is evicted.
/// </summary>
internal sealed class TerminalOutput
{
    // Small reads (a shell's echo comes a byte at a time) join into chunks of up to this size.
    private const int JoinBelow = 4096;
    private readonly OutputRing _ring;
    private readonly int _maxLag;
    private readonly object _gate = new();
    private readonly List<OutputCursor> _cursors = [];
    // What WaitForSpace last allowed the producer, which it is reading now and will append (0 once appended).
    private int _granted;
    private TaskCompletionSource _changed = NewSignal();
    private bool _completed;

    public TerminalOutput(int capacity, int maxLag)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 16);
        _ring = new OutputRing(capacity, joinBelow: JoinBelow);
        _maxLag = Math.Clamp(maxLag, 1, capacity);
    }

    public long End
    {
        get
        {
            lock (_gate)
            {
                return _ring.End;
            }
        }
    }

    /// <summary>
    /// Producer: how many bytes may be appended now, at most <paramref name="wanted"/>, waiting
    /// while a viewer is <c>maxLag</c> behind. A viewer that has not moved for <paramref name="slowLimit"/>
    /// while holding the producer back is evicted.
    /// </summary>
    public int WaitForSpace(int wanted, TimeSpan slowLimit, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var waitedSince = Environment.TickCount64;
            var lastProgress = SlowestPosition();
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var slowest = SlowestPosition();
                if (slowest is null)
                {
                    return _granted = wanted;
                }
                var space = _maxLag - (int)(_ring.End - slowest.Value);
                if (space > 0)
                {
                    return _granted = Math.Min(space, wanted);
                }
                if (slowest != lastProgress)
                {
                    lastProgress = slowest;
                    waitedSince = Environment.TickCount64;
                }
                else if (Environment.TickCount64 - waitedSince > slowLimit.TotalMilliseconds)
                {
                    EvictSlowest();
                    continue;
                }
                Monitor.Wait(_gate, 100);
            }
        }
    }

    /// <summary>Producer: appends bytes (no more than <see cref="WaitForSpace"/> allowed) and wakes the viewers.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _ring.Append(data);
            _granted = 0;
            changed = TakeSignal();
        }
        changed.TrySetResult();
    }

    /// <summary>Wakes every waiting viewer to look again (e.g. whether it may still watch).</summary>
    public void Wake()
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            changed = TakeSignal();
        }
        changed.TrySetResult();
    }

    /// <summary>Producer: no more output will come. Viewers drain what is left, then see <see cref="TakeState.Completed"/>.</summary>
    public void Complete()
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _completed = true;
            changed = TakeSignal();
            Monitor.PulseAll(_gate);
        }
        changed.TrySetResult();
    }

    /// <summary>
    /// A new viewer reading from <paramref name="since"/> (default: the oldest byte kept). A
    /// position older than the scrollback starts at the oldest byte kept, with <see cref="OutputCursor.Truncated"/>.
    /// </summary>
    public OutputCursor Attach(long? since)
    {
        lock (_gate)
        {
            // Not a byte that the producer's read under way (its room was given before this viewer came) pushes out.
            var start = _ring.StartAfter(_granted);
            var position = Math.Clamp(since ?? start, start, _ring.End);
            var truncated = since is { } s && s < start;
            if (position == start && start > 0)
            {
                // The oldest byte kept may be the middle of a UTF-8 character.
                var skip = 0;
                while (skip < 3 && position + skip < _ring.End && IsContinuation(At(position + skip)))
                {
                    skip++;
                }
                position += skip;
            }
            var cursor = new OutputCursor(this, position, truncated);
            _cursors.Add(cursor);
            return cursor;
        }
    }

    internal void Detach(OutputCursor cursor)
    {
        lock (_gate)
        {
            _cursors.Remove(cursor);
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Viewer: copies what the cursor has not seen yet into <paramref name="buffer"/>, ending on
    /// a whole UTF-8 character unless the output is complete, and moves the cursor on.
    /// </summary>
    internal TakeState Take(OutputCursor cursor, Span<byte> buffer, out int count)
    {
        lock (_gate)
        {
            count = 0;
            if (cursor.Evicted)
            {
                return TakeState.Evicted;
            }
            var available = (int)Math.Min(_ring.End - cursor.Position, buffer.Length);
            if (available > 0)
            {
                var take = _completed ? available : WholeCharacters(cursor.Position, available);
                if (take > 0)
                {
                    _ring.Copy(cursor.Position, buffer[..take]);
                    cursor.Position += take;
                    count = take;
                    Monitor.PulseAll(_gate);
                    return TakeState.Data;
                }
            }
            return _completed && cursor.Position >= _ring.End ? TakeState.Completed : TakeState.Empty;
        }
    }

    /// <summary>Completes when the cursor may have something new to take (data, completion or eviction).</summary>
    internal Task WaitAsync(OutputCursor cursor, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (cursor.Evicted || _completed)
            {
                return Task.CompletedTask;
            }
            var pending = _ring.End - cursor.Position;
            // A lone partial character at the end waits for the rest of it.
            if (pending > 0 && WholeCharacters(cursor.Position, (int)Math.Min(pending, 4)) > 0)
            {
                return Task.CompletedTask;
            }
            return _changed.Task.WaitAsync(cancellationToken);
        }
    }

    private long? SlowestPosition()
    {
        long? slowest = null;
        foreach (var cursor in _cursors)
        {
            if (slowest is null || cursor.Position < slowest)
            {
                slowest = cursor.Position;
            }
        }
        return slowest;
    }

    private void EvictSlowest()
    {
        var slowest = _cursors.MinBy(c => c.Position)!;
        slowest.Evicted = true;
        _cursors.Remove(slowest);
        TakeSignal().TrySetResult();
    }

    // How many of `count` bytes from `position` can go out without splitting a UTF-8 character at the end.
    private int WholeCharacters(long position, int count)
    {
        var end = position + count;
        for (var back = 1; back <= Math.Min(3, count); back++)
        {
            var b = At(end - back);
            if (IsContinuation(b))
            {
                continue;
            }
            var length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            return length > back ? count - back : count;
        }
        return count;
    }

    private byte At(long position) => _ring.At(position);

    private static bool IsContinuation(byte b) => (b & 0xC0) == 0x80;

    // Under the lock: the signal waiting viewers hold, replaced by a fresh one; complete it outside the lock.
    private TaskCompletionSource TakeSignal()
    {
        var changed = _changed;
        _changed = NewSignal();
        return changed;
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

internal enum TakeState
{
    Data,
    Empty,
    Completed,
    Evicted,
}

/// <summary>One viewer's place in a terminal's output.</summary>
internal sealed class OutputCursor(TerminalOutput output, long position, bool truncated) : IDisposable
{
    public long Position { get; set; } = position;

    /// <summary>Where this viewer started.</summary>
    public long From { get; } = position;

    public bool Truncated { get; } = truncated;

    public bool Evicted { get; set; }

    public TakeState Take(Span<byte> buffer, out int count) => output.Take(this, buffer, out count);

    public Task WaitAsync(CancellationToken cancellationToken) => output.WaitAsync(this, cancellationToken);

    public void Dispose() => output.Detach(this);
}
