using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// How the server reaches a preview's app: a sandboxed app lives in a network namespace of its own (this machine's
/// loopback is not its), so a bridge inside the sandbox serves it on a Unix socket in the deploy's runtime directory,
/// and requests for its port go there; anything else (a container's published port) is TCP on 127.0.0.1.
/// The health checks and the preview's proxy connect through here.
/// </summary>
public sealed class PreviewConnections
{
    /// <summary>The bridge, run beside the app in its sandbox: connections to the socket go to the app's port there.</summary>
    public const string Bridge = """
        const net = require('net'), fs = require('fs');
        const path = process.env.COVIBE_SOCKET, port = Number(process.env.PORT);
        try { fs.unlinkSync(path); } catch {}
        net.createServer((client) => {
          const app = net.connect(port, '127.0.0.1');
          client.pipe(app); app.pipe(client);
          app.on('error', () => client.destroy()); client.on('error', () => app.destroy());
        }).listen(path);
        """;

    /// <summary>Where the bridge listens, inside the sandbox (the deploy's runtime directory).</summary>
    public const string SocketInside = "/covibe/http.sock";

    private readonly ConcurrentDictionary<int, string> _sockets = new();

    public static string SocketOf(string runtimeDirectory) => Path.Combine(runtimeDirectory, "http.sock");

    /// <summary>Requests for <paramref name="port"/> go to the Unix socket <paramref name="socket"/>.</summary>
    public void Register(int port, string socket) => _sockets[port] = socket;

    /// <summary>Forgets the socket of a deploy that stopped (only its own: the port may serve a newer deploy already).</summary>
    public void Forget(int port, string socket) => _sockets.TryRemove(new KeyValuePair<int, string>(port, socket));

    /// <summary>A handler whose connections to 127.0.0.1:PORT go where the app of that port is.</summary>
    public SocketsHttpHandler Handler() => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ActivityHeadersPropagator = null,
        ConnectCallback = ConnectAsync,
    };

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var unix = _sockets.TryGetValue(context.DnsEndPoint.Port, out var path);
        var socket = unix
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(unix ? new UnixDomainSocketEndPoint(path!) : new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
