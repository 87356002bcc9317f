using System.Buffers;
using System.Net.WebSockets;
using System.Threading.RateLimiting;

namespace Covibe.Web;

/// <summary>What hub and terminal connections share about the messages clients send: a rate, and what one receive found (sending is <see cref="Outbox"/>'s).</summary>
public static class WebSocketText
{
    /// <summary>
    /// How many messages one connection may send: <paramref name="perSecond"/>, in bursts of twice
    /// that. One flooding client must not hog a thread; its excess messages are refused.
    /// </summary>
    public static MessageRate MessageLimiter(int perSecond) => new(perSecond);

    public readonly record struct Received(int Count, bool TooLarge, bool Binary, bool Closed);
}

/// <summary>
/// One connection's message allowance: <c>perSecond</c> messages a second, in bursts of up to
/// twice that. A token bucket refilled from the time elapsed when a message arrives, so an idle
/// connection costs no timer. For one reader at a time (a connection's receive loop).
/// </summary>
public sealed class MessageRate(int perSecond, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly int _burst = perSecond * 2;
    private double _tokens = perSecond * 2;
    private long _refilledAt = (time ?? TimeProvider.System).GetTimestamp();

    /// <summary>Takes one message's allowance; false when the connection has used it up (the message is refused).</summary>
    public bool TryTake()
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(_burst, _tokens + (_time.GetElapsedTime(_refilledAt, now).TotalSeconds * perSecond));
        _refilledAt = now;
        if (_tokens < 1)
        {
            return false;
        }
        _tokens -= 1;
        return true;
    }
}

/// <summary>
/// One connection's receive buffer: 1 KiB while the connection idles (most messages fit), grown from
/// the shared pool for a larger message and given back when the next one is read, so ten thousand
/// idle connections do not each hold a buffer of the largest message allowed.
/// </summary>
public sealed class MessageBuffer(int maxBytes) : IDisposable
{
    private const int Small = 1024;
    private readonly byte[] _small = new byte[Math.Min(Small, maxBytes)];
    private byte[]? _rented;

    private byte[] Buffer => _rented ?? _small;

    /// <summary>The message last read: valid until the next <see cref="ReceiveAsync"/>.</summary>
    public ReadOnlyMemory<byte> Message(int count) => Buffer.AsMemory(0, count);

    /// <summary>Reads one whole message; one larger than the limit is read to its end and reported, never kept.</summary>
    public async Task<WebSocketText.Received> ReceiveAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        Release();
        var count = 0;
        var tooLarge = false;
        byte[]? discard = null;
        try
        {
            ValueWebSocketReceiveResult result;
            do
            {
                var room = count < Capacity || (count < maxBytes && Grow(count));
                if (!room)
                {
                    discard ??= ArrayPool<byte>.Shared.Rent(4096);
                }
                result = await socket.ReceiveAsync(room ? Buffer.AsMemory(count, Capacity - count) : discard.AsMemory(), cancellationToken);
                if (room)
                {
                    count += result.Count;
                }
                else if (result.Count > 0)
                {
                    tooLarge = true;
                }
            }
            while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);
            return new WebSocketText.Received(count, tooLarge, result.MessageType == WebSocketMessageType.Binary, result.MessageType == WebSocketMessageType.Close);
        }
        finally
        {
            if (discard is not null)
            {
                ArrayPool<byte>.Shared.Return(discard);
            }
        }
    }

    public void Dispose() => Release();

    private int Capacity => Math.Min(Buffer.Length, maxBytes);

    /// <summary>A larger buffer from the pool, holding what was read so far.</summary>
    private bool Grow(int count)
    {
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(maxBytes, Math.Max(Buffer.Length * 4, 16 * 1024)));
        Buffer.AsSpan(0, count).CopyTo(bigger);
        if (_rented is not null)
        {
            ArrayPool<byte>.Shared.Return(_rented);
        }
        _rented = bigger;
        return true;
    }

    private void Release()
    {
        if (_rented is not null)
        {
            ArrayPool<byte>.Shared.Return(_rented);
            _rented = null;
        }
    }
}
