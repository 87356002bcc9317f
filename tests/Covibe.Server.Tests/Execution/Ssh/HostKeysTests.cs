using Covibe.Execution;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Tests;

/// <summary>The forms in which an owner confirms a VM's host key.</summary>
public sealed class HostKeysTests
{
    private static readonly HostKey Ed25519 = new("h ssh-ed25519 AAAA", "ssh-ed25519", "SHA256:abcDEF123+/x");
    private static readonly HostKey Rsa = new("h ssh-rsa AAAA", "ssh-rsa", "SHA256:zzz");

    [Theory]
    [InlineData("SHA256:abcDEF123+/x")]
    [InlineData("ssh-ed25519 SHA256:abcDEF123+/x")]
    [InlineData("  ssh-ed25519\tSHA256:abcDEF123+/x  ")]
    [InlineData("256 SHA256:abcDEF123+/x root@vm (ED25519)")]
    public void AFingerprintAsOfferedOrAsSshKeygenPrintsIt_NamesTheKey(string confirmed) =>
        HostKeys.Matching([Ed25519, Rsa], confirmed).ShouldBe([Ed25519]);

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("SHA256:")]
    [InlineData("abcDEF123+/x")]
    [InlineData("SHA256:abcDEF123")]
    [InlineData("ssh-rsa SHA256:abcDEF123+/x")]
    [InlineData("MD5:12:34")]
    public void AnythingElse_NamesNoKey(string? confirmed) =>
        HostKeys.Matching([Ed25519, Rsa], confirmed).ShouldBeEmpty();
}
