using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Covibe.Server.Tests;

/// <summary>Containers from the web client: an agent and a terminal in the team's containers, and the Environment panel.</summary>
[Collection(PodmanGroup.Name)]
public sealed class ContainerWebClientTests(PodmanService podman, BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task AgentAndTerminal_RunInContainers_AndTheWorkshopShowsTheTeamsEnvironment()
    {
        var settings = podman.Settings(AgentHelpers.Settings(mockDelayMs: 300, mockSteps: 40));
        settings["Covibe:Terminals:DefaultShell"] = "/bin/bash";
        await using var server = await TestServer.StartAsync(settings: settings);
        var sarah = await browser.NewPageAsync(server, 1280, 800);
        await sarah.CreateTeamAsync("Boxed", "Sarah", "sarah.box@example.com");

        await sarah.SpawnAsync("Refactor in a box", "mock");
        await sarah.Locator("#output-readable").GetByText("I'll work on: Refactor in a box").WaitForAsync();
        await sarah.Locator("#agents").GetByText("in a container").WaitForAsync();
        (await sarah.Locator("#agents").InnerTextAsync()).ShouldContain("in a container");

        await sarah.TabAsync("Workshop");
        await sarah.GetByRole(AriaRole.Button, new() { Name = "New terminal" }).ClickAsync();
        await sarah.Locator("#terminal-status").GetByText("Connected").WaitForAsync();
        await sarah.Locator("#terminal .xterm").ClickAsync();
        await sarah.Keyboard.TypeAsync("echo inside-$(id -u) in=$(pwd)");
        await sarah.Keyboard.PressAsync("Enter");
        await sarah.Locator("#terminal .xterm-rows").GetByText("inside-10001 in=/workspace").WaitForAsync();
        (await sarah.Locator("#terminal .xterm-rows").InnerTextAsync()).ShouldContain("inside-10001 in=/workspace");
        (await sarah.Locator("#terminal-target option[value='']").InnerTextAsync()).ShouldBe("in the team's container");

        // The Environment panel lists the agent's container and the team's workspace container, with their limits.
        await sarah.TabAsync("Command Deck");
        await sarah.TabAsync("Workshop");
        await sarah.Locator("#env-summary").GetByText("run in containers").WaitForAsync();
        await sarah.Locator("#env-containers").GetByText("covibes_sync_").WaitForAsync();
        await sarah.Locator("#env-containers").GetByText("covibes_agent_").WaitForAsync();
        await sarah.Locator("#env-containers").GetByText("2048 MiB, 1 CPU").First.WaitForAsync();
        var listed = await sarah.Locator("#env-containers .env-name").AllInnerTextsAsync();
        listed.Count.ShouldBe(2);
        listed.ShouldContain(name => name.StartsWith("covibes_sync_", StringComparison.Ordinal));
        listed.ShouldContain(name => name.StartsWith("covibes_agent_", StringComparison.Ordinal));
        (await sarah.Locator("#env-summary").InnerTextAsync()).ShouldBe("Your team's agents and terminals run in containers.");
        await sarah.ScreenshotAsync("workshop-containers-1280");
    }
}
