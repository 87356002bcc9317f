using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Covibe.Server.Tests;

/// <summary>The Showcase tab in real (headless) Chromium: seed 001's Scenario 3 as the team sees it.</summary>
public sealed class PreviewWebTests(BrowserFixture browser) : IClassFixture<BrowserFixture>, IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task TheOwnerConnectsTheRepository_ThenEveryPushShowsOnEveryonesShowcase_WithoutAReload()
    {
        _repo.Commit("v1", PreviewTests.Site("v1"));
        await using var server = await TestServer.StartAsync(settings: PreviewTests.Settings);
        var sarah = await browser.NewPageAsync(server);
        await sarah.CreateTeamAsync("Rocket", "Sarah", "sarah.preview@example.com");
        var invite = await sarah.InviteCodeAsync();
        var miguel = await browser.NewPageAsync(server, 1280, 800);
        await miguel.JoinAsync(invite, "Miguel", "miguel.preview@example.com");
        await miguel.TabAsync("Showcase");
        await miguel.Locator("#preview-summary").GetByText("the team owner connects").WaitForAsync();
        (await miguel.Locator("#preview-settings-toggle").IsVisibleAsync()).ShouldBeFalse("only the owner connects the repository");

        // Sarah connects the repository from the Showcase; the webhook's secret is shown once.
        await sarah.TabAsync("Showcase");
        await sarah.Locator("#preview-form").GetByLabel("Repository").FillAsync(_repo.Path);
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Connect and deploy" }).ClickAsync();
        await sarah.Locator("#preview-webhook").WaitForAsync(new() { Timeout = 30_000 });
        var secret = await sarah.Locator("#preview-webhook-secret").InputValueAsync();
        secret.ShouldMatch("^[0-9a-f]{64}$");
        var webhook = await sarah.Locator("#preview-webhook-url").InputValueAsync();
        var teamId = webhook[(webhook.IndexOf("team=", StringComparison.Ordinal) + 5)..];

        // Both see v1 in the frame, served from the preview's own origin.
        foreach (var page in new[] { sarah, miguel })
        {
            await page.FrameLocator("#preview-frame").Locator("h1").GetByText("v1").WaitForAsync(new() { Timeout = 60_000 });
        }
        (await miguel.Locator("#preview-frame").GetAttributeAsync("src"))!.ShouldStartWith($"http://{teamId}.preview.localhost:");
        await miguel.EvaluateAsync("window.notReloaded = true");

        // An agent pushes v2: everyone's Showcase shows it, without reloading the page.
        var v2 = _repo.Commit("v2", PreviewTests.Site("v2"));
        using (var github = new PreviewClient(server, ""))
        {
            (await github.PushAsync(teamId, secret, v2)).StatusCode.ShouldBe(System.Net.HttpStatusCode.Accepted);
        }
        foreach (var page in new[] { sarah, miguel })
        {
            await page.FrameLocator("#preview-frame").Locator("h1").GetByText("v2").WaitForAsync(new() { Timeout = 60_000 });
        }
        (await miguel.EvaluateAsync<bool>("window.notReloaded === true")).ShouldBeTrue();
        await miguel.Locator("#preview-summary .badge.live").WaitForAsync();

        // A broken push: the team is told, v2 stays on screen, the build log says why.
        var v3 = _repo.Commit("v3", new() { ["covibe.preview.json"] = """{"build": "echo missing module; exit 2", "static": "."}""" });
        using (var github = new PreviewClient(server, ""))
        {
            (await github.PushAsync(teamId, secret, v3)).StatusCode.ShouldBe(System.Net.HttpStatusCode.Accepted);
        }
        await miguel.Locator("#preview-error").GetByText($"The deploy of {v3[..7]} failed").WaitForAsync(new() { Timeout = 60_000 });
        await miguel.FrameLocator("#preview-frame").Locator("h1").GetByText("v2").WaitForAsync();
        await miguel.Locator("#preview-log-toggle").ClickAsync();
        await miguel.Locator("#preview-log").GetByText("missing module").WaitForAsync();
        await miguel.ScreenshotAsync("showcase-preview-1280");
        await sarah.ScreenshotAsync("showcase-preview-390");
    }

    public void Dispose() => _repo.Dispose();
}
