using System.Net.WebSockets;

namespace Covibe.Terminals;

/// <summary>Reads one whole client message, bounded: a message larger than the buffer is read to its end and reported, never kept.</summary>
public static class WebSocketText
{
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
