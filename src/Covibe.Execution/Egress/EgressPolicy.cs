using System.Net;
using System.Net.Sockets;

namespace Covibe.Execution.Egress;

/// <summary>
/// Where a team's code may connect: <see cref="Open"/> (anywhere the walls allow), <see cref="Allowlist"/> (the host
/// names and CIDRs listed, through the egress proxy) or <see cref="None"/> (nowhere). Ordered from the most closed.
/// </summary>
public enum EgressMode
{
    None = 0,
    Allowlist = 1,
    Open = 2,
}

/// <summary>
/// A team's egress policy: its mode and, for <see cref="EgressMode.Allowlist"/>, the host names (<c>example.org</c>,
/// <c>*.example.org</c>: any name under it) and IPv4 CIDRs (<c>10.1.2.0/24</c>) its code may connect to.
/// </summary>
public sealed record EgressPolicy(EgressMode Mode, IReadOnlyList<string> Hosts, IReadOnlyList<EgressCidr> Cidrs)
{
    public static readonly EgressPolicy OpenToAll = new(EgressMode.Open, [], []);

    public bool Restricted => Mode != EgressMode.Open;

    /// <summary>The policy of <paramref name="mode"/> with <paramref name="entries"/> sorted into host names and CIDRs (invalid ones are skipped: <see cref="Validate"/> first).</summary>
    public static EgressPolicy From(EgressMode mode, IEnumerable<string> entries)
    {
        var list = entries.Select(e => e.Trim()).Where(e => e.Length > 0).ToList();
        return new EgressPolicy(mode,
            [.. list.Where(e => !e.Contains('/', StringComparison.Ordinal) && HostPattern(e)).Select(e => e.ToLowerInvariant()).Distinct()],
            [.. list.Select(e => EgressCidr.TryParse(e, out var cidr) ? cidr : null).OfType<EgressCidr>().Distinct()]);
    }

    /// <summary>What is wrong with an allowlist entry, or null: a host name (<c>*.</c> allowed first), an IPv4 address or an IPv4 CIDR.</summary>
    public static string? Validate(string entry)
    {
        var e = entry.Trim();
        if (e.Length is 0 or > 253)
        {
            return "must be a host name, an IPv4 address or an IPv4 CIDR (at most 253 characters)";
        }
        if (e.Contains('/', StringComparison.Ordinal) || IPAddress.TryParse(e, out _))
        {
            return EgressCidr.TryParse(e, out _) ? null : $"'{e}' is not an IPv4 address or CIDR (a.b.c.d/n)";
        }
        return HostPattern(e) ? null : $"'{e}' is not a host name (letters, digits, '-' and '.', optionally starting with '*.')";
    }

    /// <summary>Whether <paramref name="host"/> (a name, or an address as text) may be connected to through the proxy.</summary>
    public bool AllowsHost(string host)
    {
        if (Mode == EgressMode.Open)
        {
            return true;
        }
        if (Mode == EgressMode.None)
        {
            return false;
        }
        if (IPAddress.TryParse(host, out var address))
        {
            return AllowsAddress(address);
        }
        var name = host.TrimEnd('.').ToLowerInvariant();
        return Hosts.Any(pattern => pattern.StartsWith("*.", StringComparison.Ordinal)
            ? name.EndsWith(pattern[1..], StringComparison.Ordinal) && name.Length > pattern.Length - 1
            : name == pattern);
    }

    /// <summary>Whether <paramref name="address"/> is in one of the listed CIDRs (or the policy is open).</summary>
    public bool AllowsAddress(IPAddress address) =>
        Mode == EgressMode.Open || (Mode == EgressMode.Allowlist && Cidrs.Any(c => c.Contains(address)));

    private static bool HostPattern(string e)
    {
        var name = e.StartsWith("*.", StringComparison.Ordinal) ? e[2..] : e;
        return name.Length > 0 && !IPAddress.TryParse(name, out _) && name.Split('.').All(label =>
            label.Length is > 0 and <= 63 && label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') && label[0] != '-' && label[^1] != '-');
    }
}

/// <summary>An IPv4 network, <c>a.b.c.d/n</c> (a single address is <c>/32</c>).</summary>
public sealed record EgressCidr(IPAddress Network, int PrefixLength)
{
    public static bool TryParse(string text, out EgressCidr cidr)
    {
        cidr = null!;
        var parts = text.Trim().Split('/');
        if (parts.Length > 2 || !IPAddress.TryParse(parts[0], out var address) || address.AddressFamily != AddressFamily.InterNetwork
            || parts[0].Count(c => c == '.') != 3)
        {
            return false;
        }
        var length = 32;
        if (parts.Length == 2 && (!int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out length) || length > 32))
        {
            return false;
        }
        cidr = new EgressCidr(FromUInt(ToUInt(address) & Mask(length)), length);
        return true;
    }

    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        return address.AddressFamily == AddressFamily.InterNetwork && (ToUInt(address) & Mask(PrefixLength)) == ToUInt(Network);
    }

    public override string ToString() => $"{Network}/{PrefixLength.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    private static uint Mask(int length) => length == 0 ? 0 : uint.MaxValue << (32 - length);

    private static IPAddress FromUInt(uint value) => new([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);

    private static uint ToUInt(IPAddress address)
    {
        var b = address.GetAddressBytes();
        return ((uint)b[0] << 24) | ((uint)b[1] << 16) | ((uint)b[2] << 8) | b[3];
    }
}
