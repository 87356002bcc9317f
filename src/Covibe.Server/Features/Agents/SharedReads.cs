namespace Covibe.Server.Features.Agents;

/// <summary>
/// Reads that callers share: one asking for a key whose read is under way (or, for the last <c>keep</c> keys read, done)
/// gets that read's result instead of starting another. A read belongs to no one caller: it goes on for the others when
/// the one that started it stops waiting. A read that fails is told to everyone waiting for it and not kept, so the next
/// caller reads again. Used where a crowd asks for the same thing at once: every watcher catching up through the same part
/// of an agent's log (<see cref="LogBlocks"/>), every follower subscribing from an agent's start (<see cref="AgentActions"/>).
/// </summary>
public sealed class SharedReads<TKey, TValue>(int keep = 0) where TKey : notnull
{
    private readonly Lock _lock = new();
    private readonly Dictionary<TKey, Task<TValue>> _underWay = [];
    private readonly KeptLast<TKey, Task<TValue>> _kept = new(keep);
    private int _started;

    /// <summary>The value for <paramref name="key"/>: the read under way or kept, else <paramref name="read"/>'s.</summary>
    public Task<TValue> GetAsync(TKey key, Func<TKey, Task<TValue>> read, CancellationToken cancellationToken)
    {
        TaskCompletionSource<TValue> reading;
        lock (_lock)
        {
            if (_underWay.TryGetValue(key, out var known) || _kept.TryGetValue(key, out known))
            {
                return known.WaitAsync(cancellationToken);
            }
            reading = new TaskCompletionSource<TValue>(TaskCreationOptions.RunContinuationsAsynchronously);
            _underWay[key] = reading.Task;
        }
        Interlocked.Increment(ref _started);
        _ = ReadAsync(key, reading, read);
        return reading.Task.WaitAsync(cancellationToken);
    }

    private async Task ReadAsync(TKey key, TaskCompletionSource<TValue> reading, Func<TKey, Task<TValue>> read)
    {
        try
        {
            var value = await read(key);
            Done(key, reading.Task, kept: true);
            reading.SetResult(value);
        }
        catch (Exception e)
        {
            Done(key, reading.Task, kept: false);
            reading.SetException(e);
        }
    }

    private void Done(TKey key, Task<TValue> read, bool kept)
    {
        lock (_lock)
        {
            _underWay.Remove(key);
            if (kept)
            {
                _kept.Add(key, read);
            }
        }
    }

    /// <summary>How many reads were started (tests and diagnostics).</summary>
    public int Reads => Volatile.Read(ref _started);

    /// <summary>How many reads are under way or kept (tests).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _underWay.Count + _kept.Count;
            }
        }
    }
}
