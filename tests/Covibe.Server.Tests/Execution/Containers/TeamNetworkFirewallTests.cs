using Covibe.Execution.Containers;

namespace Covibe.Server.Tests;

public sealed class TeamNetworkFirewallTests
{
    [Fact]
    public void BridgeNames_FitLinux_StartWithThePrefixTheFirewallMatches_AndDifferByTeam()
    {
        var a = TeamNetworks.BridgeName("0193a0b1c2d37e8f9a0b1c2d3e4f5a6b");
        var b = TeamNetworks.BridgeName("0193a0b1c2d37e8f9a0b1c2d3e4f5a6c");
        a.Length.ShouldBe(15, "IFNAMSIZ - 1");
        a.ShouldStartWith(TeamNetworkFirewall.BridgePrefix);
        a.ShouldNotBe(b);
        TeamNetworks.BridgeName("0193a0b1c2d37e8f9a0b1c2d3e4f5a6b").ShouldBe(a, "the same team gets the same bridge on every start");
    }

    [Fact]
    public void NameServers_AreTheIPv4OnesOfResolvConf()
    {
        TeamNetworkFirewall.NameServers("# comment\nnameserver 10.255.255.53\nnameserver  fe80::1\nsearch example.org\n\tnameserver 1.1.1.1 \nnameserver nonsense\n")
            .ShouldBe(["10.255.255.53", "1.1.1.1"]);
    }

    [Fact]
    public void Rules_RefuseOtherTeamsThisMachineMetadataAndPrivateRanges_LettingRepliesAndDnsThrough()
    {
        var rules = TeamNetworkFirewall.Rules(["10.255.255.53", "not-an-address"], allowPrivate: false, sameBridge: true).Split('\n');
        // Replies first, then the same bridge, then any other bridge of a team refused.
        rules.ShouldContain("-A COVIBE-TEAMS -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN");
        Array.IndexOf(rules, "-A COVIBE-TEAMS -m physdev --physdev-is-bridged -j RETURN")
            .ShouldBeLessThan(Array.IndexOf(rules, "-A COVIBE-TEAMS -o covibe+ -j REJECT --reject-with icmp-admin-prohibited"));
        // The resolver (a private address here) before the private ranges it is in.
        Array.IndexOf(rules, "-A COVIBE-TEAMS -d 10.255.255.53/32 -p udp --dport 53 -j RETURN")
            .ShouldBeLessThan(Array.IndexOf(rules, "-A COVIBE-TEAMS -d 10.0.0.0/8 -j REJECT --reject-with icmp-admin-prohibited"));
        rules.ShouldContain("-A COVIBE-TEAMS -d 169.254.0.0/16 -j REJECT --reject-with icmp-admin-prohibited");
        rules.ShouldNotContain(r => r.Contains("not-an-address"));
        rules[^3].ShouldBe("-A COVIBE-TEAMS-HOST -j REJECT --reject-with icmp-admin-prohibited", "this machine: nothing but replies, DNS and the egress proxy");
        rules.ShouldContain("-A COVIBE-TEAMS-HOST -j COVIBE-EGRESS-HOST");
        // A team's egress chain decides before the resolver is let through (a team with no egress gets no DNS either).
        Array.IndexOf(rules, "-A COVIBE-TEAMS -j COVIBE-EGRESS").ShouldBeLessThan(Array.IndexOf(rules, "-A COVIBE-TEAMS -d 10.255.255.53/32 -p udp --dport 53 -j RETURN"));
        rules[^2].ShouldBe("COMMIT");
    }

    [Fact]
    public void Rules_WithPrivateNetworksAllowed_StillRefuseLinkLocal_AndWithoutBridgeNetfilter_LeaveBridgesToTheEngine()
    {
        var rules = TeamNetworkFirewall.Rules([], allowPrivate: true, sameBridge: false);
        rules.ShouldContain("-d 169.254.0.0/16 -j REJECT");
        rules.ShouldNotContain("10.0.0.0/8");
        rules.ShouldNotContain("physdev");
        rules.ShouldNotContain("-o covibe+");
    }
}
