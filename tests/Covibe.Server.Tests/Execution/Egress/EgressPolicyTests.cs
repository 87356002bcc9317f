using System.Net;
using Covibe.Execution.Egress;
using Covibe.Server.Features.Egress;

namespace Covibe.Server.Tests;

public sealed class EgressPolicyTests
{
    private static readonly EgressPolicy Allowlist = EgressPolicy.From(EgressMode.Allowlist,
        ["api.anthropic.com", "*.github.com", " Registry.NPMjs.org ", "10.1.2.0/24", "192.0.2.7", "not a host!"]);

    [Theory]
    [InlineData("api.anthropic.com", true)]
    [InlineData("API.anthropic.com.", true)]
    [InlineData("evil-api.anthropic.com", false)]
    [InlineData("anthropic.com", false)]
    [InlineData("codeload.github.com", true)]
    [InlineData("a.b.github.com", true)]
    [InlineData("github.com", false)]
    [InlineData("notgithub.com", false)]
    [InlineData("registry.npmjs.org", true)]
    [InlineData("10.1.2.200", true)]
    [InlineData("10.1.3.1", false)]
    [InlineData("192.0.2.7", true)]
    [InlineData("192.0.2.8", false)]
    public void AnAllowlist_AllowsItsNames_WildcardsBelowThemOnly_AndItsCidrs(string host, bool allowed) =>
        Allowlist.AllowsHost(host).ShouldBe(allowed);

    [Fact]
    public void NoneAllowsNothing_OpenEverything_AndInvalidEntriesNeverMatch()
    {
        EgressPolicy.From(EgressMode.None, ["api.anthropic.com"]).AllowsHost("api.anthropic.com").ShouldBeFalse();
        EgressPolicy.OpenToAll.AllowsHost("anything.example").ShouldBeTrue();
        Allowlist.Hosts.ShouldBe(["api.anthropic.com", "*.github.com", "registry.npmjs.org"]);
        Allowlist.Cidrs.Select(c => c.ToString()).ShouldBe(["10.1.2.0/24", "192.0.2.7/32"]);
    }

    [Theory]
    [InlineData("example.org", null)]
    [InlineData("*.example.org", null)]
    [InlineData("10.0.0.0/8", null)]
    [InlineData("203.0.113.9", null)]
    [InlineData("", "must be a host name")]
    [InlineData("exa mple.org", "is not a host name")]
    [InlineData("*example.org", "is not a host name")]
    [InlineData("-bad.org", "is not a host name")]
    [InlineData("10.0.0.0/33", "is not an IPv4 address or CIDR")]
    [InlineData("fe80::1", "is not an IPv4 address or CIDR")]
    [InlineData("10.0.0/8", "is not an IPv4 address or CIDR")]
    public void Entries_AreCheckedWithAReasonToShow(string entry, string? problem)
    {
        if (problem is null)
        {
            EgressPolicy.Validate(entry).ShouldBeNull();
        }
        else
        {
            EgressPolicy.Validate(entry)!.ShouldContain(problem);
        }
    }

    [Fact]
    public void Cidrs_AreNormalised_AndMatchMappedAddresses()
    {
        EgressCidr.TryParse("10.1.2.3/16", out var cidr).ShouldBeTrue();
        cidr.ToString().ShouldBe("10.1.0.0/16");
        cidr.Contains(IPAddress.Parse("10.1.255.255")).ShouldBeTrue();
        cidr.Contains(IPAddress.Parse("::ffff:10.1.0.9")).ShouldBeTrue();
        cidr.Contains(IPAddress.Parse("10.2.0.1")).ShouldBeFalse();
        EgressCidr.TryParse("0.0.0.0/0", out var all).ShouldBeTrue();
        all.Contains(IPAddress.Parse("8.8.8.8")).ShouldBeTrue();
    }

    [Fact]
    public void SandboxSources_AreLoopbackAddressesThatGiveBackTheirSlot()
    {
        foreach (var slot in new[] { 1, 255, 256, 70000, (1 << 22) - 1 })
        {
            var address = TeamEgress.SandboxSourceOf(slot);
            IPAddress.IsLoopback(address).ShouldBeTrue();
            TeamEgress.SlotOf(address).ShouldBe(slot);
        }
        TeamEgress.SlotOf(IPAddress.Loopback).ShouldBeNull("the server's own loopback is no team's");
        TeamEgress.SlotOf(IPAddress.Parse("10.89.0.2")).ShouldBeNull();
    }

    [Fact]
    public void SandboxRules_LetOnlyLoopbackAndTheProxyOut_AndLogTheRestBeforeRefusingIt()
    {
        var egress = new TeamEgress("team-1", Allowlist, TeamEgress.SandboxSourceOf(3), 3129);
        var rules = EgressRules.Sandbox(egress).Split('\n');
        rules.ShouldContain("-A OUTPUT -o lo -j ACCEPT");
        rules.ShouldContain("-A OUTPUT -d 10.0.2.2/32 -p tcp --dport 3129 -j ACCEPT");
        rules.ShouldContain(r => r.Contains($"-j LOG --log-prefix \"covibe-egress {egress.Key} \""));
        rules[^3].ShouldBe("-A OUTPUT -j REJECT --reject-with icmp-admin-prohibited");
        EgressRules.Sandbox(egress with { Policy = EgressPolicy.From(EgressMode.None, []) }).ShouldNotContain("--dport 3129", customMessage: "none: not even the proxy");
    }

    [Fact]
    public void ContainerChains_LetDnsAndCidrsThroughForAnAllowlist_NothingForNone_AndAreEmptyWhenOpen()
    {
        var egress = new TeamEgress("team-1", Allowlist, TeamEgress.SandboxSourceOf(3), 3129);
        var chain = EgressRules.ChainOf(egress);
        var rules = EgressRules.ContainerChain(egress, ["10.255.255.53"]);
        rules.ShouldContain($"-A {chain} -d 10.255.255.53/32 -p udp --dport 53 -j RETURN");
        rules.ShouldContain($"-A {chain} -d 10.1.2.0/24 -j RETURN");
        rules.ShouldContain($"-A {chain} -j REJECT --reject-with icmp-admin-prohibited");
        EgressRules.ContainerChain(egress with { Policy = EgressPolicy.From(EgressMode.None, ["10.1.2.0/24"]) }, ["10.255.255.53"]).ShouldNotContain("RETURN");
        EgressRules.ContainerChain(egress with { Policy = EgressPolicy.OpenToAll }, ["10.255.255.53"]).ShouldBe($"*filter\n:{chain} - [0:0]\nCOMMIT\n");
        EgressRules.ContainerScript(egress, "covibeabc").ShouldContain("--dport 3129 -j ACCEPT");
    }

    [Fact]
    public void KernelLines_OfRefusals_AreReadBack_OthersAreNot()
    {
        var record = KernelLog.ParseRecord("4,71388,65247393194,-;covibe-egress 8ef4bbd80 IN= OUT=tap0 SRC=10.0.2.100 DST=203.0.113.1 LEN=60 TOS=0x00 PROTO=TCP SPT=46158 DPT=7000 WINDOW=65495 SYN URGP=0 \n");
        record!.Value.Microseconds.ShouldBe(65247393194);
        RefusedConnection.Parse(record.Value.Message).ShouldBe(new RefusedConnection("8ef4bbd80", "203.0.113.1", 7000));
        RefusedConnection.Parse("cni-podman0: port 30(veth294bbfdd) entered blocking state").ShouldBeNull();
        KernelLog.ParseRecord("garbage").ShouldBeNull();
    }

    [Theory]
    [InlineData("CONNECT internet.test:443 HTTP/1.1\r\nHost: internet.test:443\r\n\r\n", true, "internet.test", 443)]
    [InlineData("CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", true, "2001:db8::1", 443)]
    [InlineData("GET http://example.org/a?b=c HTTP/1.1\r\nHost: example.org\r\nProxy-Connection: keep-alive\r\n\r\n", false, "example.org", 80)]
    [InlineData("GET http://example.org:8080/ HTTP/1.0\r\n\r\n", false, "example.org", 8080)]
    public void ProxyRequests_NameTheirHostAndPort(string head, bool connect, string host, int port)
    {
        var request = ProxyRequest.Parse(head)!;
        (request.Connect, request.Host, request.Port).ShouldBe((connect, host, port));
    }

    [Theory]
    [InlineData("GET /relative HTTP/1.1\r\n\r\n")]
    [InlineData("GET https://example.org/ HTTP/1.1\r\n\r\n")]
    [InlineData("CONNECT example.org HTTP/1.1\r\n\r\n")]
    [InlineData("CONNECT example.org:99999 HTTP/1.1\r\n\r\n")]
    [InlineData("hello\r\n\r\n")]
    public void OtherRequests_AreNotProxied(string head) => ProxyRequest.Parse(head).ShouldBeNull();

    [Fact]
    public void PlainHttp_GoesOnInOriginForm_WithoutTheProxysHeaders() =>
        ProxyRequest.Parse("GET http://example.org/a?b=c HTTP/1.1\r\nHost: example.org\r\nProxy-Authorization: Basic eA==\r\nAccept: */*\r\n\r\n")!
            .OriginForm().ShouldBe("GET /a?b=c HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n");
}
