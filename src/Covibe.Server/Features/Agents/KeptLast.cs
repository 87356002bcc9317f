namespace Covibe.Server.Features.Agents;

/// <summary>
/// The values of the last <c>capacity</c> keys added, the oldest let go first (not thread-safe: its owner locks). Holds
/// what a crowd may ask for again soon: reads just done (<see cref="SharedReads{TKey, TValue}"/>), the log blocks of agents
/// recently replayed (<see cref="AgentFeeds.ReplayOf"/>).
/// </summary>
public sealed class KeptLast<TKey, TValue>(int capacity) where TKey : notnull
{
    private readonly Dictionary<TKey, TValue> _values = [];
    private readonly Queue<TKey> _order = new();

    public int Count => _values.Count;

    public bool TryGetValue(TKey key, out TValue value) => _values.TryGetValue(key, out value!);

    /// <summary>Keeps <paramref name="value"/> for <paramref name="key"/> (not kept already), letting the oldest go past the capacity.</summary>
    public void Add(TKey key, TValue value)
    {
        if (capacity <= 0)
        {
            return;
        }
        _values.Add(key, value);
        _order.Enqueue(key);
        while (_order.Count > capacity)
        {
            _values.Remove(_order.Dequeue());
        }
    }
}
