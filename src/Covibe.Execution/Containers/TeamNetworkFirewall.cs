using System.Diagnostics;
using System.Net;
using System.Text;
using Covibe.Execution.Egress;
using Covibe.Execution.Local;

namespace Covibe.Execution.Containers;

/// <summary>
/// The wall around teams' container networks on this machine, in iptables (the engine's own tool for its bridges):
/// every team bridge is named <c>covibe…</c>, and traffic that comes in on one is refused when it goes to another
/// team's bridge or any other network of the engine, to this machine itself (its services, the server's port, the
/// engine's gateway address), to link-local addresses (cloud metadata) and, unless allowed, to private ranges; the
/// DNS servers this machine uses stay reachable on port 53. Replies to connections this machine opened (the server
/// reaching a preview's published port) pass. Refusals are ICMP "administratively prohibited": a program sees
/// "no route to host" at once rather than a timeout.
/// </summary>
public static class TeamNetworkFirewall
{
    /// <summary>How every team bridge's name starts (<see cref="TeamNetworks.BridgeName"/>); iptables matches it as <c>covibe+</c>.</summary>
    public const string BridgePrefix = "covibe";

    /// <summary>Traffic routed from (or to) a team bridge.</summary>
    public const string ForwardChain = "COVIBE-TEAMS";

    /// <summary>Traffic from a team bridge to this machine.</summary>
    public const string HostChain = "COVIBE-TEAMS-HOST";

    private const string Refuse = "-j REJECT --reject-with icmp-admin-prohibited";

    /// <summary>
    /// The rules, as <c>iptables-restore --noflush</c> input: it makes (or empties) the two chains and fills them, in
    /// one step. <paramref name="sameBridge"/>: traffic between two containers of one bridge is seen here (bridge
    /// netfilter) and told apart by the physdev match; without it, only the engine's own isolation separates bridges.
    /// </summary>
    public static string Rules(IEnumerable<string> nameServers, bool allowPrivate, bool sameBridge)
    {
        var dns = nameServers.Where(s => IPAddress.TryParse(s, out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork).ToList();
        var rules = new StringBuilder();
        rules.Append("*filter\n").Append(':').Append(ForwardChain).Append(" - [0:0]\n").Append(':').Append(HostChain).Append(" - [0:0]\n");
        void Add(string chain, string rule) => rules.Append("-A ").Append(chain).Append(' ').Append(rule).Append('\n');

        Add(ForwardChain, "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN");
        if (sameBridge)
        {
            Add(ForwardChain, "-m physdev --physdev-is-bridged -j RETURN");
            Add(ForwardChain, $"-o {BridgePrefix}+ {Refuse}");
        }
        Add(ForwardChain, $"! -i {BridgePrefix}+ -j RETURN");
        // Each team's egress policy (its chain refuses before the resolver below, for a team with none).
        Add(ForwardChain, $"-j {EgressRules.ContainerJumps}");
        foreach (var server in dns)
        {
            Add(ForwardChain, $"-d {server}/32 -p udp --dport 53 -j RETURN");
            Add(ForwardChain, $"-d {server}/32 -p tcp --dport 53 -j RETURN");
        }
        foreach (var range in allowPrivate ? ["169.254.0.0/16"] : SandboxNetwork.PrivateRanges)
        {
            Add(ForwardChain, $"-d {range} {Refuse}");
        }
        Add(HostChain, "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN");
        // The egress proxy's port, for the teams whose policy sends them through it.
        Add(HostChain, $"-j {EgressRules.HostJumps}");
        foreach (var server in dns)
        {
            Add(HostChain, $"-d {server}/32 -p udp --dport 53 -j RETURN");
            Add(HostChain, $"-d {server}/32 -p tcp --dport 53 -j RETURN");
        }
        Add(HostChain, Refuse);
        rules.Append("COMMIT\n");
        return rules.ToString();
    }

    /// <summary>
    /// Where the chains are jumped to from, each added once: first in INPUT, first in FORWARD, and in the chains the
    /// engines keep for an administrator's rules ahead of their own accepts (CNI's <c>CNI-ADMIN</c>, made here if Podman
    /// has not yet, and Docker's <c>DOCKER-USER</c> when it exists), since an engine may later put its chain first in FORWARD.
    /// </summary>
    public const string JumpsScript = $$"""
        set -e
        for chain in {{EgressRules.ContainerJumps}} {{EgressRules.HostJumps}}; do iptables -n -L "$chain" >/dev/null 2>&1 || iptables -N "$chain"; done
        iptables-restore --noflush
        jump() { iptables -C "$1" $2 -j "$3" 2>/dev/null || iptables -I "$1" 1 $2 -j "$3"; }
        jump INPUT "-i {{BridgePrefix}}+" {{HostChain}}
        jump FORWARD "-i {{BridgePrefix}}+" {{ForwardChain}}
        jump FORWARD "-o {{BridgePrefix}}+" {{ForwardChain}}
        iptables -n -L CNI-ADMIN >/dev/null 2>&1 || iptables -N CNI-ADMIN
        jump CNI-ADMIN "-i {{BridgePrefix}}+" {{ForwardChain}}
        jump CNI-ADMIN "-o {{BridgePrefix}}+" {{ForwardChain}}
        if iptables -n -L DOCKER-USER >/dev/null 2>&1; then
          jump DOCKER-USER "-i {{BridgePrefix}}+" {{ForwardChain}}
          jump DOCKER-USER "-o {{BridgePrefix}}+" {{ForwardChain}}
        fi
        """;

    /// <summary>The IPv4 name servers of a <c>resolv.conf</c>.</summary>
    public static List<string> NameServers(string resolvConf) =>
        [.. resolvConf.Split('\n').Select(l => l.Trim().Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .Where(w => w is ["nameserver", _, ..] && IPAddress.TryParse(w[1], out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            .Select(w => w[1])];

    /// <summary>
    /// Puts the wall up on this machine (root, iptables): null when it stands, else why it does not. Run again, it
    /// replaces the chains' rules and adds no second jump.
    /// </summary>
    public static async Task<string?> ApplyAsync(bool allowPrivate, CancellationToken cancellationToken)
    {
        if (Native.GetEuid() != 0)
        {
            return "the server does not run as root, so it cannot set this machine's firewall";
        }
        var nameServers = MachineNameServers();
        string? failed = null;
        foreach (var sameBridge in (bool[])[true, false])
        {
            failed = await RunAsync(JumpsScript, Rules(nameServers, allowPrivate, sameBridge), cancellationToken);
            if (failed is null)
            {
                return null;
            }
        }
        return failed;
    }

    /// <summary>This machine's DNS servers (IPv4), as containers are given them.</summary>
    public static List<string> MachineNameServers() => File.Exists("/etc/resolv.conf") ? NameServers(File.ReadAllText("/etc/resolv.conf")) : [];

    /// <summary>Runs <paramref name="script"/> (iptables, as root) with <paramref name="rules"/> on its stdin: null when it succeeded, else what it said.</summary>
    public static async Task<string?> RunAsync(string script, string rules, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("sh") { RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        try
        {
            using var process = Process.Start(info)!;
            await process.StandardInput.WriteAsync(rules);
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var error = await process.StandardError.ReadToEndAsync(cancellationToken);
            await output;
            await process.WaitForExitAsync(cancellationToken);
            return process.ExitCode == 0 ? null : $"iptables failed (exit {process.ExitCode}): {error.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"iptables cannot be run: {e.Message}";
        }
    }
}
