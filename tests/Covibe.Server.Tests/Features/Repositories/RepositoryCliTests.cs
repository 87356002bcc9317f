using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary><c>covibe repo ...</c> driven as a process: the deploy key, connecting over SSH with it and over HTTPS with a token from stdin.</summary>
public sealed class RepositoryCliTests(SshServer sshd) : IClassFixture<SshServer>, IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();
    private readonly GitRepo _source = GitRepo.Create();

    [Fact]
    public async Task KeyConnectShowDisconnect_FromTheCommandLine()
    {
        _source.Commit("v1", new() { ["README.md"] = "private" });
        var (sshUrl, _) = await sshd.ServeRepositoryAsync(_source);
        await using var forge = await GitHttpServer.StartAsync();
        var (httpUrl, _) = forge.Serve(_source);
        await using var server = await TestServer.StartAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        var sarah = new CliRunner(Path.Combine(_root, "sarah"));
        (await sarah.RunAsync(TestServer.Password, "login", "--server", server.Url.ToString(), "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);

        var key = await sarah.RunAsync(null, "repo", "key");
        key.ExitCode.ShouldBe(0, key.Stderr);
        var publicKey = key.Stdout.Trim();
        publicKey.ShouldStartWith("ecdsa-sha2-nistp256 ");
        key.Stderr.ShouldContain("as a deploy key with write access");

        var refused = await sarah.RunAsync(null, "repo", "connect", sshUrl);
        refused.ExitCode.ShouldBe(1);
        refused.Stderr.ShouldContain("refused the key");
        sshd.Authorize(publicKey);
        var connected = await sarah.RunAsync(null, "repo", "connect", sshUrl, "--host-key", sshd.HostKeyFingerprint);
        connected.ExitCode.ShouldBe(0, connected.Stderr);
        connected.Stdout.ShouldContain($"Repository: {sshUrl} (base branch main), over SSH with the team's deploy key.");
        connected.Stdout.ShouldContain($"Host key pinned: ssh-ed25519 {sshd.HostKeyFingerprint}");

        // Over HTTPS with a token read from stdin (never an argument, which the machine's process list shows).
        var token = await sarah.RunAsync(forge.Token + "\n", "repo", "connect", httpUrl, "--token-stdin", "--branch", "main");
        token.ExitCode.ShouldBe(0, token.Stderr);
        token.Stdout.ShouldContain("with an access token");
        token.Stdout.ShouldNotContain(forge.Token);

        var miguel = new CliRunner(Path.Combine(_root, "miguel"));
        (await miguel.RunAsync(TestServer.Password, "login", "--server", server.Url.ToString(), "--email", member.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
        (await miguel.RunAsync(null, "repo")).Stdout.ShouldContain($"Repository: {httpUrl} (base branch main), with an access token.");
        var notOwner = await miguel.RunAsync(null, "repo", "disconnect");
        notOwner.ExitCode.ShouldBe(1);
        notOwner.Stderr.ShouldContain("Only the team owner");

        (await sarah.RunAsync(null, "repo", "disconnect")).ExitCode.ShouldBe(0);
        var gone = await miguel.RunAsync(null, "repo");
        gone.ExitCode.ShouldBe(1);
        gone.Stderr.ShouldContain("The team has no repository yet");
    }

    public void Dispose()
    {
        _source.Dispose();
        StartupTests.Delete(_root);
    }
}
