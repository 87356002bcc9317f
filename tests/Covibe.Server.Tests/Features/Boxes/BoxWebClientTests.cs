using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Covibe.Server.Tests;

/// <summary>Boxes from the web client: request one, watch it become ready, run an agent and open a terminal in it, release it.</summary>
[Collection(PodmanGroup.Name)]
public sealed class BoxWebClientTests(PodmanService podman, BrowserFixture browser) : IClassFixture<BrowserFixture>, IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task RequestABox_RunAnAgentAndATerminalInIt_AndReleaseIt_FromTheWorkshop()
    {
        _repo.Commit("first", new() { ["README.md"] = "hello from the repository\n" });
        var settings = BoxClient.Settings(podman);
        settings["Covibe:Terminals:DefaultShell"] = "/bin/bash";
        await using var server = await TestServer.StartAsync(settings: settings);
        var sarah = await browser.NewPageAsync(server, 1280, 900);
        await sarah.CreateTeamAsync("Boxes", "Sarah", "sarah.boxes@example.com");

        await sarah.TabAsync("Workshop");
        var form = sarah.Locator("#box-form");
        await form.GetByLabel("Repository", new() { Exact = true }).FillAsync(_repo.Path);
        await form.GetByLabel(".env (optional, kept encrypted)").FillAsync("TOKEN=abc\n");
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Request a box" }).ClickAsync();
        await sarah.Locator("#boxes .box").WaitForAsync();
        // The box may show (box_updated on the hub) a moment before the request's answer, which empties the field.
        await Eventually.UntilAsync(() => form.GetByLabel(".env (optional, kept encrypted)").InputValueAsync(), value => value.Length == 0,
            "the .env is not kept in the page");
        // box_updated brings each step; the box ends ready with its commit and .env.
        var item = sarah.Locator("#boxes .box-ready");
        await item.WaitForAsync(new() { Timeout = 120_000 });
        (await item.InnerTextAsync()).ShouldContain("ready · Sarah · .env");

        // An agent in the box, from the spawn form's "Where".
        await sarah.TabAsync("Command Deck");
        await sarah.Locator("#spawn-toggle").ClickAsync();
        await sarah.Locator("#spawn-form textarea[name=task]").FillAsync("Read the README");
        await sarah.Locator("#agent-types").SelectOptionAsync("inside");
        await sarah.Locator("#spawn-box").SelectOptionAsync(new SelectOptionValue { Index = 1 });
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Spawn agent" }).ClickAsync();
        await sarah.Locator("#output-raw, #output-readable").GetByText("hello from the repository").First.WaitForAsync();

        // A terminal in the box, from its Terminal button.
        await sarah.TabAsync("Workshop");
        await sarah.Locator("#boxes").GetByRole(AriaRole.Button, new() { Name = "Terminal" }).ClickAsync();
        await sarah.Locator("#terminal-status").GetByText("Connected").WaitForAsync();
        await sarah.Locator("#terminal .xterm").ClickAsync();
        await sarah.Keyboard.TypeAsync("cat README.md; echo in=$(pwd)");
        await sarah.Keyboard.PressAsync("Enter");
        await sarah.Locator("#terminal .xterm-rows").GetByText("in=/workspace").WaitForAsync();
        (await sarah.Locator("#terminal .xterm-rows").InnerTextAsync()).ShouldContain("hello from the repository");
        await sarah.ScreenshotAsync("workshop-boxes-1280");

        await sarah.Locator("#boxes").GetByRole(AriaRole.Button, new() { Name = "Release" }).ClickAsync();
        await sarah.Locator("#boxes-empty").WaitForAsync();
    }

    public void Dispose() => _repo.Dispose();
}
