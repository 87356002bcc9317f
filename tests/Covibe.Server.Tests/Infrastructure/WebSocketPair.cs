using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;

namespace Covibe.Server.Tests;

/// <summary>A client and a server WebSocket joined by a real loopback TCP connection, for unit tests of what sits on one.</summary>
public static class WebSocketPair
{
    /// <summary><paramref name="socketBufferBytes"/>: both kernel buffers this small, so a reader that stops is felt at once.</summary>
    public static async Task<(WebSocket Client, WebSocket Server, IDisposable Sockets)> OpenAsync(int? socketBufferBytes = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var connecting = new TcpClient();
        if (socketBufferBytes is { } size)
        {
            connecting.ReceiveBufferSize = size;
        }
        await connecting.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var accepted = await listener.AcceptTcpClientAsync();
        if (socketBufferBytes is { } sendSize)
        {
            accepted.SendBufferSize = sendSize;
        }
        listener.Stop();
        var client = WebSocket.CreateFromStream(connecting.GetStream(), new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });
        var server = WebSocket.CreateFromStream(accepted.GetStream(), new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        return (client, server, new Both(connecting, accepted, client, server));
    }

    private sealed class Both(params IDisposable[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items)
            {
                item.Dispose();
            }
        }
    }
}
