using System.Globalization;

namespace Covibe.Server.Features.Egress;

/// <summary>
/// The head of a request to the egress proxy: <c>CONNECT host:port</c> (a tunnel), or a method with an absolute
/// <c>http://</c> URL (plain HTTP, sent on in origin form without the <c>Proxy-*</c> headers).
/// </summary>
public sealed record ProxyRequest(bool Connect, string Host, int Port, string Method, string PathAndQuery, string Version, IReadOnlyList<string> Headers)
{
    public static ProxyRequest? Parse(string head)
    {
        var lines = head.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var first = lines.Length > 0 ? lines[0].Split(' ') : [];
        if (first.Length != 3 || !first[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            return null;
        }
        var (method, target, version) = (first[0], first[1], first[2]);
        var headers = lines[1..];
        if (method == "CONNECT")
        {
            return HostAndPort(target, 0) is var (host, port) && port > 0 ? new ProxyRequest(true, host, port, method, "", version, headers) : null;
        }
        if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || string.IsNullOrEmpty(uri.Host))
        {
            return null;
        }
        return new ProxyRequest(false, uri.IdnHost.Trim('[', ']'), uri.Port, method, uri.PathAndQuery, version, headers);
    }

    /// <summary>The request as the origin server takes it: its path, and its headers but the proxy's own.</summary>
    public string OriginForm() =>
        $"{Method} {PathAndQuery} {Version}\r\n" +
        string.Concat(Headers.Where(h => !h.StartsWith("Proxy-", StringComparison.OrdinalIgnoreCase)).Select(h => h + "\r\n")) + "\r\n";

    private static (string Host, int Port)? HostAndPort(string target, int defaultPort)
    {
        var colon = target.LastIndexOf(':');
        var host = colon > 0 ? target[..colon] : target;
        var port = defaultPort;
        if (colon > 0 && !int.TryParse(target[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port))
        {
            return null;
        }
        host = host.Trim('[', ']');
        return host.Length is > 0 and <= 253 && port is >= 0 and <= 65535 ? (host, port) : null;
    }
}
