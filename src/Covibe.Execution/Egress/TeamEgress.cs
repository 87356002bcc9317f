using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Covibe.Execution.Egress;

/// <summary>
/// What a job of a team with a restricted egress policy carries to where it runs: the <see cref="Policy"/>; the team's
/// <see cref="Key"/>, which names its firewall chain and the log prefix of its refused connections; the address its
/// sandboxes' connections come from at the proxy (<see cref="SandboxSource"/>: how the proxy knows the team); and the
/// proxy's port on this machine.
/// </summary>
public sealed record TeamEgress(string TeamId, EgressPolicy Policy, IPAddress SandboxSource, int ProxyPort)
{
    /// <summary>The prefix of the kernel's log lines for a refused connection (<c>covibe-egress KEY </c>).</summary>
    public const string LogPrefix = "covibe-egress ";

    /// <summary>Where a sandbox reaches this machine's loopback (slirp4netns's host address), and so the proxy.</summary>
    public const string SandboxHost = "10.0.2.2";

    /// <summary>Nine hex digits of a hash of the team: its bridge (<c>covibe</c>+key), its chain and its log lines.</summary>
    public static string KeyOf(string teamId) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(teamId)))[..9];

    public string Key => KeyOf(TeamId);

    /// <summary>The variables that send programs' HTTP(S) through the proxy at <paramref name="proxyHost"/> (the tools that honour them: curl, git, npm, pip, Claude Code; Node's fetch with NODE_USE_ENV_PROXY).</summary>
    public Dictionary<string, string> ProxyEnvironment(string proxyHost)
    {
        var proxy = $"http://{proxyHost}:{ProxyPort.ToString(CultureInfo.InvariantCulture)}";
        return new()
        {
            ["HTTPS_PROXY"] = proxy,
            ["HTTP_PROXY"] = proxy,
            ["https_proxy"] = proxy,
            ["http_proxy"] = proxy,
            ["NO_PROXY"] = "localhost,127.0.0.1",
            ["no_proxy"] = "localhost,127.0.0.1",
            ["NODE_USE_ENV_PROXY"] = "1",
        };
    }

    /// <summary>
    /// The address of the <paramref name="slot"/>-th team at the proxy: in 127.64.0.0/10, on this machine's loopback, so a
    /// sandbox's connections (slirp4netns binds them there) can reach nothing but this machine's loopback.
    /// </summary>
    public static IPAddress SandboxSourceOf(int slot) =>
        new([127, (byte)(64 + ((slot >> 16) & 63)), (byte)(slot >> 8), (byte)slot]);

    /// <summary>The slot of a sandbox source address (<see cref="SandboxSourceOf"/>), or null.</summary>
    public static int? SlotOf(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        var b = address.GetAddressBytes();
        return b.Length == 4 && b[0] == 127 && b[1] is >= 64 and < 128 ? ((b[1] - 64) << 16) | (b[2] << 8) | b[3] : null;
    }
}

/// <summary>A team's egress policy cannot be enforced where its code would run (a sandbox sharing this machine's network): nothing starts.</summary>
public sealed class EgressNotEnforcedException(string teamId, string why = EgressNotEnforcedException.SharedNetwork)
    : IOException($"Your team's egress policy cannot be enforced where this would run ({why}), so it does not start. Ask the server's operator, or set the team's egress policy to open.")
{
    public const string SharedNetwork = "the sandbox shares this machine's network: the server does not run as root";

    public string TeamId { get; } = teamId;
}

/// <summary>Where a team's egress policy is enforced for a place.</summary>
public enum EgressWall
{
    /// <summary>In the sandbox's own network namespace (a place on this machine; with the server's privileges nothing of a restricted team starts).</summary>
    Sandbox,

    /// <summary>At the team's container bridge on this machine (agents', workspace, preview and box containers).</summary>
    TeamBridge,

    /// <summary>Another machine (a VM): its own network, not this server's to wall.</summary>
    Elsewhere,
}
