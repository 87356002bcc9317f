using Microsoft.Playwright;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// Headless Chromium from Debian (never a downloaded one) driven by Playwright, shared by the
/// browser tests. The flags keep it off the network: no background services, no updates.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        File.Exists(Chromium).ShouldBeTrue($"{Chromium} is missing: install Debian's chromium package (./test.sh does).");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"],
        });
    }

    /// <summary>A fresh browser profile (cookies, storage) at a phone's or a laptop's size.</summary>
    public async Task<IPage> NewPageAsync(TestServer server, int width = 390, int height = 844)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = server.Url.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
        });
        context.SetDefaultTimeout(20_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/");
        return page;
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright?.Dispose();
    }
}

/// <summary>What a person does in the web client, step by step.</summary>
public static class WebSteps
{
    public static readonly string Screenshots = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "docs", "screenshots"));

    public static async Task CreateTeamAsync(this IPage page, string team, string name, string email)
    {
        await page.GetByRole(AriaRole.Tab, new() { Name = "New team" }).ClickAsync();
        var form = page.Locator("#form-create");
        await form.GetByLabel("Team name").FillAsync(team);
        await form.GetByLabel("Your name").FillAsync(name);
        await form.GetByLabel("Email").FillAsync(email);
        await form.GetByLabel("Choose a password").FillAsync(TestServer.Password);
        await form.GetByRole(AriaRole.Button, new() { Name = "Create team" }).ClickAsync();
        await page.Locator("#connection.live").WaitForAsync();
        // A new team's first invite code is shown in the menu right away.
        await page.Locator("#invite-code:not([hidden])").WaitForAsync();
        await page.Keyboard.PressAsync("Escape");
    }

    public static async Task JoinAsync(this IPage page, string inviteCode, string name, string email)
    {
        var form = page.Locator("#form-join");
        await form.GetByLabel("Invite code").FillAsync(inviteCode);
        await form.GetByLabel("Your name").FillAsync(name);
        await form.GetByLabel("Email").FillAsync(email);
        await form.GetByLabel("Choose a password").FillAsync(TestServer.Password);
        await form.GetByRole(AriaRole.Button, new() { Name = "Join team" }).ClickAsync();
        await page.Locator("#connection.live").WaitForAsync();
    }

    public static async Task<string> InviteCodeAsync(this IPage page)
    {
        var menu = page.GetByRole(AriaRole.Button, new() { Name = "Menu" });
        if (await menu.GetAttributeAsync("aria-expanded") != "true")
        {
            await menu.ClickAsync();
        }
        var code = page.Locator("#invite-code");
        var before = await code.IsVisibleAsync() ? await code.TextContentAsync() : null;
        await page.GetByRole(AriaRole.Button, new() { Name = "Invite a teammate" }).ClickAsync();
        // Wait for the new code (the team's first one may be showing already).
        await page.WaitForFunctionAsync("before => { const c = document.querySelector('#invite-code'); return !c.hidden && c.textContent !== before; }", before);
        var text = (await code.TextContentAsync())!.Trim();
        await page.Keyboard.PressAsync("Escape");
        return text;
    }

    public static async Task SpawnAsync(this IPage page, string task, string type)
    {
        await page.GetByRole(AriaRole.Button, new() { Name = "+ New agent" }).ClickAsync();
        await page.GetByLabel("Task").FillAsync(task);
        await page.Locator("#agent-types").SelectOptionAsync(type);
        await page.GetByRole(AriaRole.Button, new() { Name = "Spawn agent" }).ClickAsync();
        await page.Locator("#agent-view:not([hidden])").WaitForAsync();
    }

    public static Task TabAsync(this IPage page, string name) =>
        page.GetByRole(AriaRole.Tab, new() { Name = name }).ClickAsync();

    public static async Task ScreenshotAsync(this IPage page, string name)
    {
        Directory.CreateDirectory(Screenshots);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, name + ".png") });
    }
}
