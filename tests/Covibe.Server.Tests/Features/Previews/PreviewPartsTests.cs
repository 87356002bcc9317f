using Covibe.Server.Features.Git;
using System.Text;
using Covibe.Server.Features.Previews;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Tests;

/// <summary>The webhook's pure parts: GitHub's signature, the push event, repository addresses, and the preview's origins.</summary>
public sealed class PreviewPartsTests
{
    // GitHub's own example (docs: "Validating webhook deliveries"): secret "It's a Secret to Everybody", payload "Hello, World!".
    private const string DocumentedSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    [Fact]
    public void Signature_MatchesGitHubsDocumentedExample_AndNothingElse()
    {
        var body = Encoding.UTF8.GetBytes("Hello, World!");
        var secret = Encoding.UTF8.GetBytes("It's a Secret to Everybody");
        GitHubPush.SignatureMatches(body, DocumentedSignature, secret).ShouldBeTrue();
        GitHubPush.Sign(body, "It's a Secret to Everybody").ShouldBe(DocumentedSignature);
        GitHubPush.SignatureMatches(Encoding.UTF8.GetBytes("Hello, World?"), DocumentedSignature, secret).ShouldBeFalse();
        GitHubPush.SignatureMatches(body, DocumentedSignature, Encoding.UTF8.GetBytes("another secret")).ShouldBeFalse();
        foreach (var header in new[] { null, "", "sha256=", "sha1=757107ea0eb2509fc211221cce984b8a37570b6d", DocumentedSignature[..^2], DocumentedSignature + "00", DocumentedSignature.Replace('7', 'z') })
        {
            GitHubPush.SignatureMatches(body, header, secret).ShouldBeFalse(header);
        }
    }

    [Fact]
    public void Parse_ReadsTheBranchTheCommitAndTheRepository_AndSeesDeletions()
    {
        var push = GitHubPush.Parse("""{"ref": "refs/heads/main", "after": "abc", "repository": {"clone_url": "https://github.com/acme/app.git", "html_url": "https://github.com/acme/app"}}"""u8)!;
        (push.Branch, push.After, push.Deleted).ShouldBe(("main", "abc", false));
        push.RepositoryUrls.ShouldBe(["https://github.com/acme/app.git", "https://github.com/acme/app"]);
        GitHubPush.Parse("""{"ref": "refs/heads/x", "after": "0000000000000000000000000000000000000000", "deleted": true}"""u8)!.Deleted.ShouldBeTrue();
        GitHubPush.Parse("""{"ref": "refs/tags/v1", "after": "abc"}"""u8)!.Branch.ShouldBeNull();
        GitHubPush.Parse("""{"zen": "ping"}"""u8).ShouldBeNull();
        GitHubPush.Parse("[]"u8).ShouldBeNull();
        Should.Throw<System.Text.Json.JsonException>(() => GitHubPush.Parse("not json"u8));
    }

    [Fact]
    public void Normalize_MatchesTheAddressesOfOneRepository()
    {
        var forms = new[] { "https://github.com/Acme/App.git", "https://github.com/acme/app", "http://github.com/acme/app/", "git@github.com:acme/app.git", "ssh://git@github.com/acme/app.git", "git://github.com/acme/app.git" };
        forms.Select(GitHubPush.Normalize).Distinct().ShouldBe(["github.com/acme/app"]);
        GitHubPush.Normalize("https://github.com/acme/other").ShouldNotBe("github.com/acme/app");
    }

    [Fact]
    public void PreviewOrigins_OnePerTeam_AndTheTeamReadBackFromTheHostName()
    {
        var urls = Urls(null);
        urls.Origin("0abc").ShouldBe("http://0abc.preview.localhost:5181");
        urls.TeamOf("0abc.preview.localhost:5181").ShouldBe("0abc");
        urls.TeamOf("0ABC.Preview.Localhost").ShouldBe("0abc");
        foreach (var host in new[] { "preview.localhost:5181", "127.0.0.1:5181", "evil.com", "a.b.preview.localhost", ".preview.localhost", "x.preview.localhost.evil.com" })
        {
            urls.TeamOf(host).ShouldBeNull(host);
        }
        var configured = Urls("https://{team}.preview.example.com");
        configured.Origin("t1").ShouldBe("https://t1.preview.example.com");
        configured.TeamOf("t1.preview.example.com").ShouldBe("t1");
        configured.TeamOf("t1.preview.localhost:5181").ShouldBeNull();
    }

    [Fact]
    public void PreviewUrl_MustGiveEachTeamItsOwnHostName()
    {
        foreach (var bad in new[] { "https://preview.example.com", "https://example.com/{team}", "ftp://{team}.example.com", "{team}" })
        {
            var errors = new PreviewsOptions { PublicUrl = bad }.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(new object())).ToList();
            errors.ShouldNotBeEmpty(bad);
            errors[0].ErrorMessage!.ShouldContain("{team}");
        }
        new PreviewsOptions { PublicUrl = "https://{team}.preview.example.com" }.Validate(new(new object())).ShouldBeEmpty();
        new PreviewsOptions { PortMin = 9000, PortMax = 5000 }.Validate(new(new object())).ShouldNotBeEmpty();
    }

    [Fact]
    public void ThePreviewListens_BesideTheServer_UnlessTold()
    {
        new PreviewsOptions().ListenAddress(null).ShouldBe(new Uri("http://127.0.0.1:5181"));
        new PreviewsOptions().ListenAddress("http://0.0.0.0:8080;http://[::]:8080").ShouldBe(new Uri("http://0.0.0.0:8081"));
        new PreviewsOptions().ListenAddress("http://127.0.0.1:0").Port.ShouldBe(0);
        new PreviewsOptions().ListenAddress("http://*:5000").ShouldBe(new Uri("http://0.0.0.0:5001"));
        new PreviewsOptions { Listen = "http://127.0.0.2:7000" }.ListenAddress("http://127.0.0.1:5180").ShouldBe(new Uri("http://127.0.0.2:7000"));
    }

    [Fact]
    public void LinksOpenPathsOnThePreviewOnly()
    {
        PreviewAccess.SafePath("/docs?x=1").ShouldBe("/docs?x=1");
        foreach (var bad in new[] { null, "", "//evil.com", "https://evil.com", "/\\evil.com", "docs", "/a\nb" })
        {
            PreviewAccess.SafePath(bad).ShouldBe("/", bad);
        }
    }

    private static PreviewUrls Urls(string? publicUrl)
    {
        var urls = new PreviewUrls(Options.Create(new PreviewsOptions { PublicUrl = publicUrl }), Options.Create(new Covibe.Server.Hosting.ServerOptions()), null!);
        urls.Listening(5181);
        return urls;
    }
}
