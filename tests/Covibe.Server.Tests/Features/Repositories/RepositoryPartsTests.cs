using System.Diagnostics;
using Covibe.Server.Features.Git;
using Covibe.Server.Features.Repositories;

namespace Covibe.Server.Tests;

/// <summary>The small pure pieces of the team's repository: addresses taken apart, deploy keys OpenSSH takes.</summary>
public sealed class RepositoryPartsTests
{
    [Theory]
    [InlineData("https://github.com/acme/app.git", RepositoryTransport.Https, "github.com", 443, null, "/acme/app.git")]
    [InlineData("http://127.0.0.1:8080/git/app.git", RepositoryTransport.Http, "127.0.0.1", 8080, null, "/git/app.git")]
    [InlineData("git@github.com:acme/app.git", RepositoryTransport.Ssh, "github.com", 22, "git", "acme/app.git")]
    [InlineData("ssh://git@gitlab.example.com:2222/acme/app.git", RepositoryTransport.Ssh, "gitlab.example.com", 2222, "git", "/acme/app.git")]
    [InlineData("ssh://forge.example.com/srv/app.git", RepositoryTransport.Ssh, "forge.example.com", 22, null, "/srv/app.git")]
    public void Addresses_AreTakenApart(string url, RepositoryTransport transport, string host, int port, string? user, string path)
    {
        var address = RepositoryAddress.Parse(url, allowLocal: false, out var problem);
        problem.ShouldBeNull();
        (address.Transport, address.Host, address.Port, address.User, address.Path).ShouldBe((transport, host, port, user, path));
    }

    [Theory]
    [InlineData("https://u:p@github.com/acme/app.git", "credentials")]
    [InlineData("ext::sh -c id", "address")]
    [InlineData("-u/app.git", "address")]
    [InlineData("git://github.com/acme/app.git", "over https")]
    [InlineData("file:///srv/app.git", "over https")]
    [InlineData("/srv/app.git", "address")]
    [InlineData("ssh://-oProxyCommand=id/app.git", "address")]
    [InlineData("git@github.com:-x", "address")]
    [InlineData("-oProxyCommand=id:app.git", "address")]
    public void Addresses_ThatAreNotRepositoriesOrInjectOptions_AreRefused(string url, string says)
    {
        RepositoryAddress.Parse(url, allowLocal: false, out var problem);
        problem.ShouldNotBeNull().ShouldContain(says);
    }

    [Fact]
    public void LocalPaths_OnlyWithTheOperatorsOptIn()
    {
        RepositoryAddress.Parse("/srv/app.git", allowLocal: true, out var problem).Transport.ShouldBe(RepositoryTransport.Local);
        problem.ShouldBeNull();
        RepositoryAddress.Parse("file:///srv/app.git", allowLocal: true, out _).Path.ShouldBe("/srv/app.git");
        RepositoryAddress.Parse("http://127.0.0.1/x.git", false, out _).IsLoopback.ShouldBeTrue();
        RepositoryAddress.Parse("http://git.example.com/x.git", false, out _).IsLoopback.ShouldBeFalse();
    }

    [Fact]
    public async Task DeployKeys_AreKeysOpenSshTakes_WithTheFingerprintItPrints()
    {
        var pair = DeployKeys.Create("covibe-team");
        var text = System.Text.Encoding.ASCII.GetString(pair.PrivateKeyPem);
        text.ShouldStartWith("-----BEGIN EC PRIVATE KEY-----");
        // ssh-keygen reads the private key (from stdin, never a file) and derives the same public key.
        (await RunAsync("ssh-keygen", ["-y", "-f", "/dev/stdin"], text)).Trim().ShouldBe(string.Join(' ', pair.PublicKey.Split(' ')[..2]));
        (await RunAsync("ssh-keygen", ["-l", "-E", "sha256", "-f", "/dev/stdin"], pair.PublicKey)).ShouldContain(pair.Fingerprint);
        DeployKeys.FingerprintOf(pair.PublicKey).ShouldBe(pair.Fingerprint);
        DeployKeys.Create("covibe-team").PublicKey.ShouldNotBe(pair.PublicKey);
    }

    private static async Task<string> RunAsync(string file, string[] args, string input)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        var output = await process.StandardOutput.ReadToEndAsync();
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.ShouldBe(0, errors);
        return output;
    }
}
