using System.Net;
using System.Net.Sockets;
using System.Text;
using Covibe.Execution.Egress;
using Covibe.Execution.Local;
using Covibe.Server.Features.Containers;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Egress;

/// <summary>
/// The egress proxy: an HTTP proxy (<c>CONNECT host:port</c> for HTTPS and anything else that tunnels, absolute URLs for
/// plain HTTP) through which the code of teams with an allowlist reaches the hosts it lists. It knows the team by where
/// the connection comes from, never by anything the client says: a sandbox's own loopback address (its number, given by
/// <see cref="EgressPolicies"/>), or a container's address on its team's network. A name it may not reach, or one that
/// resolves to this machine, a private or a link-local address the team did not list, gets <c>403</c> and is told to the
/// team (<see cref="EgressEvents"/>). Listens from the start when any team has been restricted, else from the first need.
/// </summary>
public sealed class EgressProxy(
    IOptions<EgressOptions> options, EgressPolicies policies, EgressEvents events, ContainerEngine engine, ILogger<EgressProxy> logger)
    : IHostedService, IDisposable
{
    private const int MaxHead = 16 * 1024;

    /// <summary>Connections one team may have open through the proxy at once (a build's parallel downloads fit; a flood does not).</summary>
    public const int MaxConnectionsPerTeam = 512;

    private readonly TeamConnections _connections = new(MaxConnectionsPerTeam);
    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _starting = new(1, 1);
    private Socket? _listener;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (await policies.AnyRestrictedAsync(cancellationToken))
        {
            await ListeningAsync(cancellationToken);
        }
    }

    /// <summary>The port it listens on, listening first if it does not yet.</summary>
    public async Task<int> ListeningAsync(CancellationToken cancellationToken)
    {
        if (_listener is { } listening)
        {
            return ((IPEndPoint)listening.LocalEndPoint!).Port;
        }
        await _starting.WaitAsync(cancellationToken);
        try
        {
            if (_listener is null)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    // Every address: sandboxes come from this machine's loopback, containers to their bridges' gateways.
                    socket.Bind(new IPEndPoint(IPAddress.Any, options.Value.ProxyPort));
                    socket.Listen(512);
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    throw new IOException($"The egress proxy cannot listen on port {options.Value.ProxyPort} (Covibe:Egress:ProxyPort): {e.Message}.", e);
                }
                _listener = socket;
                EgressLog.ProxyListening(logger, ((IPEndPoint)socket.LocalEndPoint!).Port);
                _ = AcceptAsync(socket, _stop.Token);
            }
            return ((IPEndPoint)_listener.LocalEndPoint!).Port;
        }
        finally
        {
            _starting.Release();
        }
    }

    private async Task AcceptAsync(Socket listener, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stop);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = ServeAsync(client, stop);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken stop)
    {
        using var _ = client;
        client.NoDelay = true;
        await using var stream = new NetworkStream(client, ownsSocket: false);
        try
        {
            var peer = ((IPEndPoint)client.RemoteEndPoint!).Address;
            if (await TeamOfAsync(peer, stop) is not { } teamId)
            {
                // Said before reading anything: a stranger holds nothing open here.
                await AnswerAsync(stream, 403, "Only the sandboxes and containers of teams on this server may use this proxy.", stop);
                return;
            }
            using var lease = _connections.Take(teamId);
            if (lease is null)
            {
                await AnswerAsync(stream, 429, $"Your team has {MaxConnectionsPerTeam} connections open through this proxy, the most it may; close some.", stop);
                return;
            }
            using var headTimeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
            headTimeout.CancelAfter(HeadTimeout);
            var (head, extra) = await ReadHeadAsync(stream, headTimeout.Token);
            if (head is null)
            {
                return;
            }
            if (ProxyRequest.Parse(head) is not { } request)
            {
                await AnswerAsync(stream, 400, "Not a proxy request: CONNECT host:port, or a method with an absolute http:// URL.", stop);
                return;
            }
            var policy = (await policies.ForTeamAsync(teamId, stop)).Policy;
            if (!policy.AllowsHost(request.Host))
            {
                events.Blocked(teamId, request.Host, request.Port, "proxy");
                await AnswerAsync(stream, 403, $"blocked: {request.Host}:{request.Port} by the team's egress policy. A team owner can allow it: covibe egress set allowlist --allow {request.Host}", stop);
                return;
            }
            var (upstream, status, problem) = await ConnectAsync(teamId, request, policy, stop);
            using var _upstream = upstream;
            if (upstream is null)
            {
                if (status == 403)
                {
                    events.Blocked(teamId, request.Host, request.Port, "proxy");
                }
                await AnswerAsync(stream, status, problem, stop);
                return;
            }
            await using var upstreamStream = new NetworkStream(upstream, ownsSocket: false);
            if (request.Connect)
            {
                await stream.WriteAsync("HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray(), stop);
            }
            else
            {
                await upstreamStream.WriteAsync(Encoding.Latin1.GetBytes(request.OriginForm()), stop);
            }
            if (extra.Length > 0)
            {
                await upstreamStream.WriteAsync(extra, stop);
            }
            // Both ways until either side is done.
            var up = stream.CopyToAsync(upstreamStream, stop);
            var down = upstreamStream.CopyToAsync(stream, stop);
            await Task.WhenAny(up, down);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client or the host went away.
        }
    }

    /// <summary>The team of a connection's source: a sandbox's loopback address, or a container's on its team's network.</summary>
    private async Task<string?> TeamOfAsync(IPAddress peer, CancellationToken cancellationToken)
    {
        if (peer.IsIPv4MappedToIPv6)
        {
            peer = peer.MapToIPv4();
        }
        if (TeamEgress.SlotOf(peer) is { } slot)
        {
            return await policies.TeamOfSlotAsync(slot, cancellationToken);
        }
        if (IPAddress.IsLoopback(peer) || !engine.Containers.Networks.PerTeam)
        {
            return null;
        }
        try
        {
            return await engine.Containers.Networks.TeamOfAddressAsync(peer, cancellationToken);
        }
        catch (Execution.PlaceUnreachableException)
        {
            return null;
        }
    }

    /// <summary>The host's first address the team may reach, connected; null when it has none.</summary>
    private async Task<(Socket? Socket, int Status, string Problem)> ConnectAsync(string teamId, ProxyRequest request, EgressPolicy policy, CancellationToken stop)
    {
        IPAddress[] addresses;
        var reachable = 0;
        var pinned = options.Value.Resolve.TryGetValue(request.Host, out var fixedAddress);
        if (pinned)
        {
            addresses = [IPAddress.Parse(fixedAddress!)];
        }
        else if (IPAddress.TryParse(request.Host, out var literal))
        {
            addresses = [literal];
        }
        else
        {
            try
            {
                addresses = await Dns.GetHostAddressesAsync(request.Host, stop);
            }
            catch (SocketException e)
            {
                EgressLog.UpstreamFailed(logger, request.Host, request.Port, teamId, e.Message);
                return (null, 502, $"{request.Host} could not be resolved ({e.Message}).");
            }
        }
        foreach (var address in addresses.Where(a => pinned || (policy.Mode == EgressMode.Allowlist && policy.Cidrs.Any(c => c.Contains(a))) || Public(a)))
        {
            reachable++;
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                timeout.CancelAfter(ConnectTimeout);
                await socket.ConnectAsync(new IPEndPoint(address, request.Port), timeout.Token);
                return (socket, 200, "");
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !stop.IsCancellationRequested)
            {
                socket.Dispose();
                EgressLog.UpstreamFailed(logger, request.Host, request.Port, teamId, e.Message);
            }
        }
        return reachable == 0
            ? (null, 403, $"blocked: {request.Host} is on this machine, or on a private or link-local network the team's egress policy does not list.")
            : (null, 502, $"{request.Host}:{request.Port} does not answer.");
    }

    private static readonly EgressCidr[] PrivateRanges =
        [.. SandboxNetwork.PrivateRanges.Select(r => EgressCidr.TryParse(r, out var cidr) ? cidr : throw new InvalidOperationException(r))];

    /// <summary>Not this machine, nor a private, shared, link-local, loopback or multicast address (what a name could be pointed at to get inside).</summary>
    private static bool Public(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (IPAddress.IsLoopback(address) || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast || address.IsIPv6UniqueLocal
            || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            return false;
        }
        if (address.AddressFamily == AddressFamily.InterNetwork
            && (PrivateRanges.Any(range => range.Contains(address)) || address.GetAddressBytes()[0] >= 224))
        {
            return false;
        }
        return !SandboxNetwork.MachineAddresses().Contains(address);
    }

    private static async Task<(string? Head, byte[] Extra)> ReadHeadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxHead];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                return (null, []);
            }
            length += read;
            var end = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                return (Encoding.Latin1.GetString(buffer, 0, end + 4), buffer[(end + 4)..length]);
            }
        }
        return (null, []);
    }

    private static async Task AnswerAsync(Stream stream, int status, string message, CancellationToken cancellationToken)
    {
        var body = Encoding.UTF8.GetBytes(message + "\n");
        var reason = status switch { 400 => "Bad Request", 403 => "Forbidden", 429 => "Too Many Requests", 502 => "Bad Gateway", _ => "Error" };
        var head = $"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        // One write: a client reading the answer sees it whole.
        await stream.WriteAsync(Encoding.Latin1.GetBytes(head).Concat(body).ToArray(), cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stop.Cancel();
        _listener?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _stop.Dispose();
        _starting.Dispose();
        _listener?.Dispose();
    }
}

/// <summary>How many proxy connections each team has open, and a lease on one more while under the limit.</summary>
internal sealed class TeamConnections(int limit)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _open = new();

    /// <summary>A lease to dispose when the connection ends; null when the team is at its limit.</summary>
    public IDisposable? Take(string teamId)
    {
        if (_open.AddOrUpdate(teamId, 1, (_, n) => n + 1) > limit)
        {
            Release(teamId);
            return null;
        }
        return new Lease(this, teamId);
    }

    private void Release(string teamId) => _open.AddOrUpdate(teamId, 0, (_, n) => n - 1);

    private sealed class Lease(TeamConnections owner, string teamId) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                owner.Release(teamId);
            }
        }
    }
}
