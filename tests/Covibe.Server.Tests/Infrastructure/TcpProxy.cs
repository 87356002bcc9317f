using System.Net;
using System.Net.Sockets;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>A loopback TCP forwarder whose connections a test can cut, as a network drop would.</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private volatile int _targetPort;
    private readonly List<TcpClient> _open = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public TcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Where new connections go: a balancer that sends the next connection to another server.</summary>
    public int TargetPort
    {
        get => _targetPort;
        set => _targetPort = value;
    }

    public Uri Url => new($"http://127.0.0.1:{Port}");

    /// <summary>Cuts every connection open now (new ones are forwarded again).</summary>
    public void DropAll()
    {
        lock (_gate)
        {
            foreach (var client in _open)
            {
                try
                {
                    if (client.Client is { } socket)
                    {
                        socket.LingerState = new LingerOption(true, 0); // RST, like a dead network path
                    }
                }
                catch (ObjectDisposedException)
                {
                    // Closed already by its pipe.
                }
                client.Dispose();
            }
            _open.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
                var outbound = new TcpClient();
                try
                {
                    await outbound.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
                }
                catch (SocketException)
                {
                    // Nothing listens there now (the server is down): refuse this one, forward the next.
                    inbound.Dispose();
                    outbound.Dispose();
                    continue;
                }
                lock (_gate)
                {
                    _open.Add(inbound);
                    _open.Add(outbound);
                }
                _ = Pipe(inbound, outbound);
                _ = Pipe(outbound, inbound);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static async Task Pipe(TcpClient from, TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream());
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        DropAll();
        await _accepting;
        _stop.Dispose();
    }
}
