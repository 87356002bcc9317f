using System.Net.WebSockets;
using System.Threading.RateLimiting;

namespace Covibe.Terminals;

/// <summary>Reads one whole client message, bounded: a message larger than the buffer is read to its end and reported, never kept.</summary>
public static class WebSocketText
{
    /// <summary>
    /// How many messages one connection may send: <paramref name="perSecond"/>, in bursts of twice
    /// that. One flooding client must not hog a thread; its excess messages are refused.
    /// </summary>
    public static TokenBucketRateLimiter MessageLimiter(int perSecond) => new(new TokenBucketRateLimiterOptions
    {
        TokenLimit = perSecond * 2,
        TokensPerPeriod = perSecond,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
    });

    public readonly record struct Received(int Count, bool TooLarge, bool Binary, bool Closed);

    public static async Task<Received> ReceiveAsync(WebSocket socket, byte[] buffer, byte[] scratch, CancellationToken cancellationToken)
    {
        var count = 0;
        var tooLarge = false;
        ValueWebSocketReceiveResult result;
        do
        {
            var room = count < buffer.Length;
            result = await socket.ReceiveAsync(room ? buffer.AsMemory(count) : scratch.AsMemory(), cancellationToken);
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
        return new Received(count, tooLarge, result.MessageType == WebSocketMessageType.Binary, result.MessageType == WebSocketMessageType.Close);
    }
}
