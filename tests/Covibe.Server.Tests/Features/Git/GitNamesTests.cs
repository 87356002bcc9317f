using Covibe.Server.Features.Git;

namespace Covibe.Server.Tests;

/// <summary>The one repository-address rule: the same shape for every feature, the addresses allowed by who fetches.</summary>
public sealed class GitNamesTests
{
    private static readonly string[] NeverAnAddress = ["", " ", "-c core.sshCommand=x", "--upload-pack=touch /tmp/x", "https://github.com/a/b\n", "https://github.com/a /b", "https://github.com/a/b\u001b[0m"];

    [Fact]
    public void TheServer_FollowsHttpsAndHttp_WithoutCredentials_AndThisDiskOnlyWhenAllowed()
    {
        GitNames.RepositoryProblem("https://github.com/acme/app.git", RepositoryFetcher.Server).ShouldBeNull();
        GitNames.RepositoryProblem("http://git.example.com/app.git", RepositoryFetcher.Server).ShouldBeNull();
        foreach (var bad in NeverAnAddress.Concat(["ssh://git@github.com/a/b", "git@github.com:a/b.git", "ext::sh -c x", "fd::3", "https://token@github.com/a/b", "https://u:p@github.com/a/b", "/srv/repo", "file:///srv/repo"]))
        {
            GitNames.RepositoryProblem(bad, RepositoryFetcher.Server).ShouldNotBeNull(bad);
        }
        GitNames.RepositoryProblem("https://u:p@github.com/a/b", RepositoryFetcher.Server, "A box")!.ShouldContain("Leave credentials out");
        GitNames.RepositoryProblem("/srv/repo", RepositoryFetcher.ServerOrThisDisk).ShouldBeNull();
        GitNames.RepositoryProblem("file:///srv/repo", RepositoryFetcher.ServerOrThisDisk).ShouldBeNull();
        GitNames.RepositoryProblem("relative/repo", RepositoryFetcher.ServerOrThisDisk).ShouldNotBeNull();
    }

    [Fact]
    public void AnAgent_ClonesAnyGitAddress_ButNothingGitWouldReadAsAnOption()
    {
        foreach (var good in new[] { "https://github.com/acme/app.git", "git@github.com:acme/app.git", "ssh://git@github.com/acme/app.git", "git://example.com/app.git", "file:///srv/repo" })
        {
            GitNames.RepositoryProblem(good, RepositoryFetcher.Agent).ShouldBeNull(good);
        }
        foreach (var bad in NeverAnAddress.Concat(["ext::sh -c x", "not a url", new string('a', 2001)]))
        {
            GitNames.RepositoryProblem(bad, RepositoryFetcher.Agent).ShouldNotBeNull(bad);
        }
    }
}
