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
    public Task<IPage> NewPageAsync(TestServer server, int width = 390, int height = 844) => NewPageAsync(server.Url, width, height);

    /// <summary>The same at any address, e.g. nginx's in front of several nodes (https there: a self-signed certificate the test made).</summary>
    public async Task<IPage> NewPageAsync(Uri url, int width = 390, int height = 844)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = url.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
            IgnoreHTTPSErrors = url.Scheme == "https",
        });
        context.SetDefaultTimeout(20_000);
        var page = await context.NewPageAsync();
        PageProblems.Watch(page);
        // Chromium fails requests in flight when this machine's interfaces change (ERR_NETWORK_CHANGED), and the container
        // tests running beside these add and remove some all the time: the page itself, or a page whose scripts were lost
        // that way, is loaded again, as a person would reload it. Any other reason for a page that never starts still fails.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await page.GotoAsync("/");
                break;
            }
            // The same, as Playwright sometimes tells it: the navigation "interrupted" by Chromium's own error page.
            catch (PlaywrightException e) when (attempt < 3 && (e.Message.Contains("ERR_NETWORK_CHANGED", StringComparison.Ordinal)
                || e.Message.Contains("interrupted by another navigation to \"chrome-error://", StringComparison.Ordinal)))
            {
            }
        }
        for (var attempt = 1; !await StartedAsync(page) && attempt < 3 && PageProblems.NetworkChanged(page); attempt++)
        {
            PageProblems.Forget(page);
            await page.ReloadAsync();
        }
        return page;
    }

    private static async Task<bool> StartedAsync(IPage page)
    {
        try
        {
            await page.Locator("#auth:not([hidden]), #app:not([hidden])").First.WaitForAsync(new() { Timeout = 10_000 });
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright?.Dispose();
    }
}

/// <summary>
/// What went wrong inside a page (script errors, console errors, failed requests), told with a wait that timed out:
/// a sign-in form that never shows says why.
/// </summary>
public static class PageProblems
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IPage, List<string>> Seen = [];

    public static void Watch(IPage page)
    {
        var seen = Seen.GetOrCreateValue(page);
        void Add(string problem)
        {
            lock (seen)
            {
                seen.Add($"{TimeProvider.System.GetUtcNow():HH:mm:ss.fff} {problem}");
            }
        }
        page.PageError += (_, error) => Add($"script error: {error}");
        page.Console += (_, message) => { if (message.Type is "error" or "warning") { Add($"console {message.Type}: {message.Text}"); } };
        page.RequestFailed += (_, request) => Add($"request failed: {request.Method} {request.Url} ({request.Failure})");
        page.Response += (_, response) => { if (response.Status >= 400) { Add($"{response.Status} for {response.Request.Method} {response.Url}"); } };
    }

    /// <summary>Whether a request of the page failed because this machine's network interfaces changed.</summary>
    public static bool NetworkChanged(IPage page)
    {
        var seen = Seen.GetOrCreateValue(page);
        lock (seen)
        {
            return seen.Any(p => p.Contains("ERR_NETWORK_CHANGED", StringComparison.Ordinal));
        }
    }

    public static void Forget(IPage page)
    {
        var seen = Seen.GetOrCreateValue(page);
        lock (seen)
        {
            seen.Clear();
        }
    }

    public static async Task Explain(IPage page, Func<Task> step)
    {
        try
        {
            await step();
        }
        catch (TimeoutException e)
        {
            var seen = Seen.GetOrCreateValue(page);
            string[] problems;
            lock (seen)
            {
                problems = [.. seen];
            }
            throw new TimeoutException($"{e.Message}\nThe page at {page.Url} saw: {(problems.Length == 0 ? "no error" : string.Join("\n  ", problems))}", e);
        }
    }
}

/// <summary>What a person does in the web client, step by step.</summary>
public static class WebSteps
{
    public static readonly string Screenshots = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "docs", "screenshots"));

    public static async Task CreateTeamAsync(this IPage page, string team, string name, string email)
    {
        await PageProblems.Explain(page, () => page.GetByRole(AriaRole.Tab, new() { Name = "New team" }).ClickAsync());
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

    /// <summary>Logs in as an existing member (the "Log in" tab), then waits for the live connection.</summary>
    public static async Task LogInAsync(this IPage page, string email)
    {
        await page.GetByRole(AriaRole.Tab, new() { Name = "Log in" }).ClickAsync();
        var form = page.Locator("#form-login");
        await form.GetByLabel("Email").FillAsync(email);
        await form.GetByLabel("Password").FillAsync(TestServer.Password);
        await form.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
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
