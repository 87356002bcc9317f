using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Covibe.Server.Tests;

/// <summary>The team's repository in the web client: the owner makes the deploy key and connects a private repository; a teammate on a phone sees it.</summary>
public sealed class RepositoryWebClientTests(BrowserFixture browser) : IClassFixture<BrowserFixture>, IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    [Fact]
    public async Task TheOwnerMakesADeployKey_ConnectsWithAToken_AndATeammateOnAPhoneSeesTheRepository()
    {
        _source.Commit("v1", new() { ["README.md"] = "private" });
        await using var forge = await GitHttpServer.StartAsync();
        var (url, _) = forge.Serve(_source);
        await using var server = await TestServer.StartAsync();
        var sarah = await browser.NewPageAsync(server, 1280, 900);
        await sarah.CreateTeamAsync("Forge", "Sarah", "sarah.repo@example.com");
        await sarah.TabAsync("Workshop");
        await sarah.Locator("#repo-summary").GetByText("No repository yet. Connect the team's repository").WaitForAsync();

        // The deploy key's public half, to paste into the forge.
        await sarah.Locator("#repo-make-key").ClickAsync();
        await sarah.Locator("#repo-key-text").GetByText("ecdsa-sha2-nistp256 ").WaitForAsync();

        // A wrong token: the forge's refusal, said plainly; the right one connects, and the field is emptied.
        var form = sarah.Locator("#repo-form");
        await form.GetByLabel("Repository").FillAsync(url);
        await form.GetByLabel("Access token").FillAsync("wrong-token");
        await form.GetByRole(AriaRole.Button, new() { Name = "Connect" }).ClickAsync();
        await sarah.Locator("#repo-error").GetByText("refused the credential").WaitForAsync();
        await form.GetByLabel("Access token").FillAsync(forge.Token);
        await form.GetByRole(AriaRole.Button, new() { Name = "Connect" }).ClickAsync();
        await sarah.Locator("#repo-summary").GetByText($"{url} (base branch main), with an access token. Connected by Sarah").WaitForAsync();
        (await form.GetByLabel("Access token").InputValueAsync()).ShouldBeEmpty();
        (await sarah.ContentAsync()).ShouldNotContain(forge.Token);

        // New agents now work on it: the spawn form offers the base branch, and the agent gets a branch of its own.
        await sarah.TabAsync("Command Deck");
        await sarah.GetByRole(AriaRole.Button, new() { Name = "+ New agent" }).ClickAsync();
        await sarah.GetByLabel("Task").FillAsync("on the team's repository");
        await sarah.Locator("#agent-types").SelectOptionAsync("mock");
        var baseBranch = sarah.GetByLabel("Base branch on the team's repository");
        (await baseBranch.GetAttributeAsync("placeholder")).ShouldBe("main");
        await baseBranch.FillAsync("main");
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Spawn agent" }).ClickAsync();
        await sarah.Locator("#view-changes:not([hidden])").WaitForAsync();
        await sarah.TabAsync("Workshop");

        // A teammate on a phone: the repository, no form, nothing wider than the screen.
        var code = await sarah.InviteCodeAsync();
        var miguel = await browser.NewPageAsync(server, 390, 844);
        await miguel.JoinAsync(code, "Miguel", "miguel.repo@example.com");
        await miguel.TabAsync("Workshop");
        await miguel.Locator("#repo-summary").GetByText($"{url} (base branch main), with an access token").WaitForAsync();
        (await miguel.Locator("#repo-owner").IsHiddenAsync()).ShouldBeTrue();
        await miguel.Locator("#repo-key").ScrollIntoViewIfNeededAsync();
        (await miguel.EvaluateAsync<int>("() => document.documentElement.scrollWidth")).ShouldBeLessThanOrEqualTo(390, "nothing wider than the phone");
        await miguel.ScreenshotAsync("workshop-repository-390");
        await sarah.Locator("#repo-summary").ScrollIntoViewIfNeededAsync();
        await sarah.ScreenshotAsync("workshop-repository-1280");
    }

    public void Dispose() => _source.Dispose();
}
