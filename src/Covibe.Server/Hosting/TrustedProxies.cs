using System.Net;
using Microsoft.AspNetCore.HttpOverrides;

namespace Covibe.Server.Hosting;

/// <summary>
/// <c>Covibe:TrustedProxies</c> (<c>TRUSTED_PROXIES</c>): the load balancers in front of this node (addresses or
/// networks, comma-separated: <c>10.0.0.5, 10.1.0.0/16</c>). From them, and only from them, <c>X-Forwarded-For</c> and
/// <c>X-Forwarded-Proto</c> say who the client is, so per-address rate limits count clients rather than the balancer.
/// Unset: no forwarded header is believed (anyone could send one).
/// </summary>
public static class TrustedProxies
{
    public const string Key = "Covibe:TrustedProxies";

    public static IServiceCollection AddTrustedProxies(this IServiceCollection services, IConfiguration configuration)
    {
        var configured = configuration[Key];
        if (string.IsNullOrWhiteSpace(configured))
        {
            return services;
        }
        var proxies = new List<IPAddress>();
        var networks = new List<System.Net.IPNetwork>();
        foreach (var entry in configured.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (entry.Contains('/', StringComparison.Ordinal) && System.Net.IPNetwork.TryParse(entry, out var network))
            {
                networks.Add(network);
            }
            else if (IPAddress.TryParse(entry, out var address))
            {
                proxies.Add(address);
            }
            else
            {
                throw new InvalidOperationException(
                    $"{Key} (TRUSTED_PROXIES): '{entry}' is neither an address (10.0.0.5) nor a network (10.0.0.0/8).");
            }
        }
        services.Configure<ForwardedHeadersOptions>(o =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            // Only these: not ASP.NET's default of trusting loopback.
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            proxies.ForEach(o.KnownProxies.Add);
            networks.ForEach(o.KnownIPNetworks.Add);
        });
        return services;
    }

    public static WebApplication UseTrustedProxies(this WebApplication app)
    {
        if (!string.IsNullOrWhiteSpace(app.Configuration[Key]))
        {
            app.UseForwardedHeaders();
        }
        return app;
    }
}
