using System.Globalization;
using System.Text;

namespace Covibe.Execution.Egress;

/// <summary>
/// A restricted team's policy as iptables rules (<c>iptables-restore</c> input), for the two places that enforce it on
/// this machine: a sandbox's own network namespace (<see cref="Sandbox"/>) and the team's container bridge
/// (<see cref="ContainerChain"/>). Both let through only what the policy allows directly (the proxy, the listed CIDRs,
/// DNS for an allowlist in containers), log each other TCP connection attempt with the team's key (at most 20 a second),
/// and refuse everything else at once ("no route to host").
/// </summary>
public static class EgressRules
{
    /// <summary>The chain of a team's container bridge, jumped to from <see cref="ContainerJumps"/>'s chain.</summary>
    public static string ChainOf(TeamEgress egress) => "COVIBE-E-" + egress.Key;

    /// <summary>Where the teams' chains are jumped to from (the wall's <c>COVIBE-TEAMS</c> jumps here).</summary>
    public const string ContainerJumps = "COVIBE-EGRESS";

    /// <summary>Where the teams' proxy ports are let in (the wall's <c>COVIBE-TEAMS-HOST</c> jumps here).</summary>
    public const string HostJumps = "COVIBE-EGRESS-HOST";

    private const string Refuse = "-j REJECT --reject-with icmp-admin-prohibited";

    /// <summary>
    /// The OUTPUT rules of a sandbox's network namespace: its own loopback, the proxy (an allowlist) at slirp4netns's
    /// host address, nothing else. (slirp4netns also binds the sandbox's outgoing connections to its loopback source.)
    /// </summary>
    public static string Sandbox(TeamEgress egress)
    {
        var rules = new StringBuilder("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
        rules.Append("-A OUTPUT -o lo -j ACCEPT\n");
        if (egress.Policy.Mode == EgressMode.Allowlist)
        {
            rules.Append(CultureInfo.InvariantCulture, $"-A OUTPUT -d {TeamEgress.SandboxHost}/32 -p tcp --dport {egress.ProxyPort} -j ACCEPT\n");
        }
        Refusals(rules, "OUTPUT", egress);
        return rules.Append("COMMIT\n").ToString();
    }

    /// <summary>The chain of the team's bridge (made or emptied, then filled): empty for an open policy.</summary>
    public static string ContainerChain(TeamEgress egress, IEnumerable<string> nameServers)
    {
        var chain = ChainOf(egress);
        var rules = new StringBuilder("*filter\n").Append(CultureInfo.InvariantCulture, $":{chain} - [0:0]\n");
        if (egress.Policy.Mode == EgressMode.Allowlist)
        {
            foreach (var server in nameServers)
            {
                rules.Append(CultureInfo.InvariantCulture, $"-A {chain} -d {server}/32 -p udp --dport 53 -j RETURN\n");
                rules.Append(CultureInfo.InvariantCulture, $"-A {chain} -d {server}/32 -p tcp --dport 53 -j RETURN\n");
            }
            foreach (var cidr in egress.Policy.Cidrs)
            {
                rules.Append(CultureInfo.InvariantCulture, $"-A {chain} -d {cidr} -j RETURN\n");
            }
        }
        if (egress.Policy.Restricted)
        {
            Refusals(rules, chain, egress);
        }
        return rules.Append("COMMIT\n").ToString();
    }

    /// <summary>The shell that loads <see cref="ContainerChain"/> from stdin and hooks it (and the proxy's port) to the team's bridge, once.</summary>
    public static string ContainerScript(TeamEgress egress, string bridge)
    {
        var chain = ChainOf(egress);
        var script = $"set -e\niptables-restore --noflush\n" +
            $"iptables -C {ContainerJumps} -i {bridge} -j {chain} 2>/dev/null || iptables -A {ContainerJumps} -i {bridge} -j {chain}\n";
        if (egress.Policy.Mode == EgressMode.Allowlist)
        {
            var proxy = $"-i {bridge} -p tcp --dport {egress.ProxyPort.ToString(CultureInfo.InvariantCulture)} -j ACCEPT";
            script += $"iptables -C {HostJumps} {proxy} 2>/dev/null || iptables -A {HostJumps} {proxy}\n";
        }
        return script;
    }

    private static void Refusals(StringBuilder rules, string chain, TeamEgress egress)
    {
        rules.Append(CultureInfo.InvariantCulture, $"-A {chain} -p tcp --tcp-flags SYN,ACK,FIN,RST SYN -m limit --limit 20/sec --limit-burst 40 -j LOG --log-prefix \"{TeamEgress.LogPrefix}{egress.Key} \"\n");
        rules.Append(CultureInfo.InvariantCulture, $"-A {chain} {Refuse}\n");
    }
}
