using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// The team's repository (issue 25, point 1) against real private hosts: a real sshd serving git with a deploy key the
/// server made (host key pinned on first use), and git's smart HTTP behind nginx with a token. The preview then follows
/// the private repository with the same credential.
/// </summary>
public sealed class RepositoryTests(SshServer sshd) : IClassFixture<SshServer>, IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    [Fact]
    public async Task OverSsh_TheOwnerMakesADeployKey_ConnectsOnceTheForgeHasIt_AndThePreviewFollowsThePrivateRepository()
    {
        var v1 = _source.Commit("v1", PreviewTests.Site("private v1"));
        var (url, _) = await sshd.ServeRepositoryAsync(_source);
        var logs = new LogSink();
        await using var server = await TestServer.StartAsync(settings: PreviewTests.Settings, logs: logs);
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        using var miguel = server.Client(member.AccessToken);

        (await miguel.GetAsync("/api/team/repository")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await miguel.PostAsync("/api/team/repository/deploy-key", null)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var key = (await (await ann.PostAsync("/api/team/repository/deploy-key", null)).Content.ReadFromJsonAsync<DeployKeyResponse>())!;
        key.PublicKey.ShouldStartWith("ecdsa-sha2-nistp256 ");
        key.Fingerprint.ShouldStartWith("SHA256:");

        // Before the forge knows the key: refused with the key to add, and nothing connected.
        using (var refused = await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url)))
        {
            var problem = await refused.ShouldBeProblemAsync(HttpStatusCode.UnprocessableEntity, "repository-refused");
            problem.GetProperty("detail").GetString()!.ShouldContain(key.PublicKey);
        }
        var pending = (await miguel.GetFromJsonAsync<TeamRepositoryResponse>("/api/team/repository"))!;
        (pending.Url, pending.PublicKey, pending.KeyFingerprint).ShouldBe((null, key.PublicKey, key.Fingerprint));

        // The forge takes the deploy key: connected, on the repository's default branch, its host key pinned and shown.
        sshd.Authorize(key.PublicKey);
        using (var connected = await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url)))
        {
            connected.StatusCode.ShouldBe(HttpStatusCode.OK, await connected.Content.ReadAsStringAsync());
        }
        var repository = (await miguel.GetFromJsonAsync<TeamRepositoryResponse>("/api/team/repository"))!;
        (repository.Url, repository.Branch, repository.Auth, repository.ConnectedBy).ShouldBe((url, "main", "ssh-key", owner.Auth.User.Name));
        repository.HostKeys.Select(k => k.Fingerprint).ShouldBe([sshd.HostKeyFingerprint]);

        // The preview follows it with no address of its own, through the same key: the private site goes live.
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        using (var preview = await ann.PutAsJsonAsync("/api/preview", new SetPreviewRequest(null)))
        {
            preview.StatusCode.ShouldBe(HttpStatusCode.OK, await preview.Content.ReadAsStringAsync());
        }
        var live = await sarah.LiveAsync(v1);
        live.RepositoryUrl.ShouldBe(url);
        var (origin, cookie) = await sarah.OpenAsync();
        (await sarah.FetchAsync(origin, "/", cookie)).Body.ShouldContain("private v1");

        // The key is the server's alone: never in a response, a log or the data directory in plaintext.
        var everything = string.Join('\n', logs.Lines) + await (await miguel.GetAsync("/api/team/repository")).Content.ReadAsStringAsync();
        everything.ShouldNotContain("PRIVATE KEY");
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, "PRIVATE KEY");
    }

    [Fact]
    public async Task OverSsh_AHostKeyOtherThanTheOneConfirmed_OrAKeyTheForgeRefuses_ConnectsNothing()
    {
        _source.Commit("v1", PreviewTests.Site("v1"));
        var (url, _) = await sshd.ServeRepositoryAsync(_source);
        await using var server = await TestServer.StartAsync();
        var owner = await server.CreateTeamAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        await ann.PostAsync("/api/team/repository/deploy-key", null);

        using (var mismatch = await ann.PutAsJsonAsync("/api/team/repository",
            new ConnectRepositoryRequest(url, HostKeyFingerprint: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")))
        {
            var problem = await mismatch.ShouldBeProblemAsync(HttpStatusCode.UnprocessableEntity, "host-key-mismatch");
            problem.GetProperty("detail").GetString()!.ShouldContain(sshd.HostKeyFingerprint);
        }
        // A key given instead of the deploy key that the forge does not know: refused too.
        using (var stranger = await ann.PutAsJsonAsync("/api/team/repository",
            new ConnectRepositoryRequest(url, PrivateKey: System.Text.Encoding.ASCII.GetString(Covibe.Server.Features.Repositories.DeployKeys.Create("stranger").PrivateKeyPem), HostKeyFingerprint: sshd.HostKeyFingerprint)))
        {
            await stranger.ShouldBeProblemAsync(HttpStatusCode.UnprocessableEntity, "repository-refused");
        }
        (await ann.GetFromJsonAsync<TeamRepositoryResponse>("/api/team/repository"))!.Url.ShouldBeNull();
    }

    [Fact]
    public async Task OverHttps_ATokenConnects_AWrongOneIsRefused_AndTheTokenIsNeverShownOrLogged()
    {
        var v1 = _source.Commit("v1", PreviewTests.Site("token v1"));
        await using var forge = await GitHttpServer.StartAsync();
        var (url, _) = forge.Serve(_source);
        var logs = new LogSink();
        await using var server = await TestServer.StartAsync(settings: PreviewTests.Settings, logs: logs);
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);

        using (var none = await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url)))
        {
            (await none.ShouldBeProblemAsync(HttpStatusCode.UnprocessableEntity, "repository-refused")).GetProperty("detail").GetString()!.ShouldContain("give an access token");
        }
        using (var wrong = await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: "not-the-token")))
        {
            (await wrong.ShouldBeProblemAsync(HttpStatusCode.UnprocessableEntity, "repository-refused")).GetProperty("detail").GetString()!.ShouldContain("refused the credential");
        }
        using (var member_ = server.Client(member.AccessToken))
        using (var notOwner = await member_.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token)))
        {
            await notOwner.ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        }
        using (var right = await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, "main", Token: forge.Token)))
        {
            right.StatusCode.ShouldBe(HttpStatusCode.OK, await right.Content.ReadAsStringAsync());
            var body = await right.Content.ReadAsStringAsync();
            body.ShouldNotContain(forge.Token);
            (await right.Content.ReadFromJsonAsync<TeamRepositoryResponse>())!.Auth.ShouldBe("token");
        }

        // The preview deploys from it with the same token.
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        (await ann.PutAsJsonAsync("/api/preview", new SetPreviewRequest(url))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await sarah.LiveAsync(v1);
        var (origin, cookie) = await sarah.OpenAsync();
        (await sarah.FetchAsync(origin, "/", cookie)).Body.ShouldContain("token v1");

        string.Join('\n', logs.Lines).ShouldNotContain(forge.Token);
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, forge.Token);
    }

    [Fact]
    public async Task BadAddressesAndFields_AreRefusedBeforeAnythingIsReached()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await server.CreateTeamAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        foreach (var (request, field, says) in new (ConnectRepositoryRequest, string, string)[]
        {
            (new("https://user:secret@example.com/app.git"), "url", "Leave credentials out"),
            (new("ext::sh -c touch% /tmp/pwned"), "url", "Give the repository's address"),
            (new("--upload-pack=touch /tmp/pwned"), "url", "Give the repository's address"),
            (new("/srv/git/app.git"), "url", "Give a git address"),
            (new("git://example.com/app.git"), "url", "over https"),
            (new("ssh://-oProxyCommand=touch%20x/app.git"), "url", "over https"),
            (new("git@example.com:-x/app.git"), "url", "over https"),
            (new("http://example.com/app.git", Token: "tok"), "token", "over https only"),
            (new("https://example.com/app.git", Branch: "--force"), "branch", "not a branch name"),
            (new("https://example.com/app.git", Token: "tok", Username: "a:b"), "username", "Letters, digits"),
            (new("https://example.com/app.git", PrivateKey: "x"), "privateKey", "for an SSH address"),
            (new("git@example.com:org/app.git"), "privateKey", "deploy key first"),
        })
        {
            using var reply = await ann.PutAsJsonAsync("/api/team/repository", request);
            (await ProblemAssertions.ShouldBeValidationProblemAsync(reply, field)).ShouldContain(says);
        }
        (await ann.GetAsync("/api/team/repository")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    public void Dispose() => _source.Dispose();
}
