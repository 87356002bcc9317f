using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Cluster;

/// <summary>
/// Where the other nodes reach this one (<c>Covibe:Cluster:NodeUrl</c>, <c>NODE_URL</c>): a client connected to another node
/// watches and controls this node's terminals through it. Unset: the address this node listens on; listening on every
/// address (<c>0.0.0.0</c>, <c>[::]</c>, <c>*</c>), this machine's first address that is not loopback. Known once the node listens.
/// </summary>
public sealed class NodeUrl(IOptions<ClusterOptions> options, IServer server)
{
    private string? _value;

    public string Value => _value ??= options.Value.NodeUrl is { Length: > 0 } configured ? configured.TrimEnd('/') : FromAddresses();

    private string FromAddresses()
    {
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://127.0.0.1:5180";
        var uri = new Uri(address.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal));
        if (uri.Host is not ("0.0.0.0" or "[::]"))
        {
            return uri.GetLeftPart(UriPartial.Authority);
        }
        var machine = Dns.GetHostAddresses(Dns.GetHostName())
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a)) ?? IPAddress.Loopback;
        return new UriBuilder(uri.Scheme, machine.ToString(), uri.Port).Uri.GetLeftPart(UriPartial.Authority);
    }
}
