using System.Text;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Covibe.Server.Tests;

/// <summary>The web client in a real (headless) Chromium against a real server.</summary>
public sealed class WebClientTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task TheWorkshop_ShowsWhatTheTeamsAgentsSpent_ADayABar_ByMember_AndFollowsAnAgentsEnd()
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings(mockDelayMs: 300, mockSteps: 4));
        var sarah = await browser.NewPageAsync(server, 1280, 900);
        await sarah.CreateTeamAsync("Spend", "Sarah", "sarah.spend@example.com");
        await sarah.TabAsync("Workshop");
        await sarah.Locator("#spend-summary").GetByText("Nothing spent in the last 14 days.").WaitForAsync();
        (await sarah.Locator("#spend-chart .spend-day").CountAsync()).ShouldBe(14);

        // An agent runs and ends while the Workshop is open: what it spent shows without a reload.
        await sarah.TabAsync("Command Deck");
        await sarah.SpawnAsync("Write a haiku", "mock");
        await sarah.TabAsync("Workshop");
        await sarah.Locator("#spend-summary").GetByText("$0.0123 in the last 14 days, by 1 agent.").WaitForAsync();
        var today = TimeProvider.System.GetUtcNow().ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var bars = sarah.Locator("#spend-chart .spend-bar.spent");
        (await bars.CountAsync()).ShouldBe(1);
        (await sarah.Locator("#spend-chart .spend-day").Last.GetAttributeAsync("title")).ShouldBe($"{today}: $0.0123, 1 agent");
        (await bars.First.BoundingBoxAsync())!.Height.ShouldBeGreaterThan(40); // the only day spent is the tallest bar
        (await sarah.Locator("#spend-chart").GetAttributeAsync("aria-label")).ShouldBe($"Spend by day: {today} $0.0123");
        (await sarah.Locator("#spend-members").InnerTextAsync()).ShouldContain("Sarah");
        (await sarah.Locator("#spend-members").InnerTextAsync()).ShouldContain("$0.0123 · 1 agent");
        await sarah.ScreenshotAsync("workshop-spend-1280");
    }

    [Fact]
    public async Task TheOwner_SetsABudgetInTheWorkshop_AndOnAPhone_EveryoneSeesItReached_AndANewAgentRefusedWithWhy()
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings(mockDelayMs: 100, mockSteps: 3));
        var sarah = await browser.NewPageAsync(server, 390, 844);
        await sarah.CreateTeamAsync("Budget", "Sarah", "sarah.budget@example.com");
        var invite = await sarah.InviteCodeAsync();
        var miguel = await browser.NewPageAsync(server);
        await miguel.JoinAsync(invite, "Miguel", "miguel.budget@example.com");
        await miguel.TabAsync("Workshop");
        (await miguel.Locator("#budget-form").IsVisibleAsync()).ShouldBeFalse(); // only the owner sets budgets

        // The owner sets the team's daily budget from her phone.
        await sarah.TabAsync("Workshop");
        var form = sarah.Locator("#budget-form");
        await form.GetByLabel("US dollars").FillAsync("0.01");
        await form.GetByRole(AriaRole.Button, new() { Name = "Set" }).ClickAsync();
        await sarah.Locator("#budgets").GetByText("$0.00 of $0.01 today").WaitForAsync();

        // An agent spends past it: both see the warning and the budget reached, without a reload.
        await miguel.TabAsync("Command Deck");
        await miguel.SpawnAsync("Write a haiku", "mock");
        await sarah.Locator("#budget-warning").GetByText("The team's daily budget of $0.01 is reached ($0.0123 today): new agents are refused until 00:00 UTC").WaitForAsync();
        await sarah.Locator("#budgets .budget.reached").GetByText("$0.0123 of $0.01 today · reached").WaitForAsync();
        await miguel.TabAsync("Workshop");
        await miguel.Locator("#budget-warning").GetByText("The team's daily budget of $0.01 is reached").WaitForAsync();
        await sarah.Locator("#budget-form").ScrollIntoViewIfNeededAsync();
        await sarah.ScreenshotAsync("workshop-budget-390");

        // The next agent is refused, saying which budget and until when.
        await miguel.TabAsync("Command Deck");
        await miguel.Locator("#agent-back").ClickAsync(); // a phone shows the list or an agent
        await miguel.GetByRole(AriaRole.Button, new() { Name = "+ New agent" }).ClickAsync();
        await miguel.GetByLabel("Task").FillAsync("Another haiku");
        await miguel.GetByRole(AriaRole.Button, new() { Name = "Spawn agent" }).ClickAsync();
        await miguel.Locator("#toast").GetByText("Not spawned: Your team's daily budget of $0.01 is spent ($0.0123 today). New agents can start again at 00:00 UTC").WaitForAsync();

        // Removed, the owner's form says so, and agents start again.
        await form.GetByRole(AriaRole.Button, new() { Name = "Remove" }).ClickAsync();
        await sarah.Locator("#budgets .budget").WaitForAsync(new() { State = WaitForSelectorState.Detached });
        await miguel.SpawnAsync("Another haiku", "mock");
    }

    [Fact]
    public async Task TwoTeammates_WatchAnAgentChatAndSeePresence_WhileAnotherTeamSeesNothing()
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings(mockDelayMs: 250, mockSteps: 60));
        var sarah = await browser.NewPageAsync(server);
        await sarah.CreateTeamAsync("Rocket", "Sarah", "sarah.web@example.com");
        var invite = await sarah.InviteCodeAsync();
        var miguel = await browser.NewPageAsync(server);
        await miguel.JoinAsync(invite, "Miguel", "miguel.web@example.com");
        var chen = await browser.NewPageAsync(server);
        await chen.CreateTeamAsync("Elsewhere", "Chen", "chen.web@example.com");

        // Sarah spawns a mock agent; Miguel watches it live, read-only.
        await sarah.SpawnAsync("Build the login page", "mock-code-writer");
        await sarah.Locator("#output-readable").GetByText("I'll work on: Build the login page").WaitForAsync();
        (await sarah.Locator("#agent-kill").IsVisibleAsync()).ShouldBeTrue();
        await miguel.Locator("#agents").GetByText("Build the login page").ClickAsync();
        await miguel.Locator("#output-readable").GetByText("Step 1 of 60").WaitForAsync();
        await miguel.Locator("#output-readable .ev-tool").First.WaitForAsync();
        (await miguel.Locator("#agent-kill").IsVisibleAsync()).ShouldBeFalse();
        (await miguel.Locator("#agent-input").IsVisibleAsync()).ShouldBeFalse();
        await sarah.ScreenshotAsync("command-deck-agent-390");

        // Sarah kills it; both see it killed.
        await sarah.Locator("#agent-kill").ClickAsync();
        await sarah.Locator("#agent-status.killed").WaitForAsync();
        await miguel.Locator("#agent-status.killed").WaitForAsync();

        // Chat and presence cross between them.
        await sarah.TabAsync("Workshop");
        await miguel.TabAsync("Workshop");
        await sarah.GetByLabel("Message").FillAsync("Login page is next, Miguel");
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await miguel.Locator("#chat").GetByText("Login page is next, Miguel").WaitForAsync();
        await miguel.GetByLabel("Message").FillAsync("On it");
        await miguel.Locator("#chat-form").GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await sarah.Locator("#chat").GetByText("On it").WaitForAsync();
        await sarah.Locator("#presence li[data-status=online]").Filter(new() { HasText = "Miguel" }).WaitForAsync();
        await sarah.ScreenshotAsync("workshop-390");

        // The other team sees none of it.
        (await chen.Locator("#agents li").CountAsync()).ShouldBe(0);
        await chen.TabAsync("Workshop");
        (await chen.Locator("#chat li").CountAsync()).ShouldBe(0);
        (await chen.Locator("#presence li").AllTextContentsAsync()).ShouldAllBe(text => !text.Contains("Sarah") && !text.Contains("Miguel"));

        await sarah.TabAsync("Showcase");
        await sarah.GetByRole(AriaRole.Heading, new() { Name = "Shared preview" }).WaitForAsync();
        await sarah.ScreenshotAsync("showcase-390");
        await sarah.TabAsync("Command Deck");
        await sarah.Locator("#agent-back").ClickAsync();
        await sarah.ScreenshotAsync("command-deck-390");
    }

    [Fact]
    public async Task GoingOfflineMidStream_ThenBackOnline_RendersTheAgentsWholeOutputExactly()
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings(mockDelayMs: 60, mockSteps: 80));
        var page = await browser.NewPageAsync(server);
        await page.CreateTeamAsync("Flaky", "Pat", "pat.web@example.com");
        await page.SpawnAsync("Survive a tunnel", "mock");
        await page.GetByRole(AriaRole.Button, new() { Name = "Raw" }).ClickAsync();
        await page.Locator("#output-raw").GetByText("Step 5 of 80").WaitForAsync();

        await page.Context.SetOfflineAsync(true);
        await page.Locator("#connection.down").WaitForAsync();
        await Task.Delay(1500); // the agent keeps writing meanwhile
        await page.Context.SetOfflineAsync(false);
        await page.Locator("#connection.live").WaitForAsync();

        await page.WaitForFunctionAsync("() => window.covibe.view && window.covibe.view.complete", null, new() { Timeout = 60_000 });
        var agentId = await page.EvaluateAsync<string>("() => window.covibe.view.id");
        var rendered = await page.Locator("#output-raw").TextContentAsync();
        rendered.ShouldBe(Encoding.UTF8.GetString(AgentHelpers.LogOf(server, agentId)));
        await page.GetByRole(AriaRole.Button, new() { Name = "Readable" }).ClickAsync();
        await page.Locator("#output-readable .ev-result").GetByText("Done: Survive a tunnel").WaitForAsync();
    }

    [Fact]
    public async Task Notifications_ForYourOwnAgentsLiveChanges_NotForHistoryAfterAReconnect()
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings(mockDelayMs: 80, mockSteps: 10));
        var page = await browser.NewPageAsync(server);
        await page.Context.GrantPermissionsAsync(["notifications"]);
        // Record notifications instead of showing them.
        await page.EvaluateAsync("() => { window.shown = []; window.Notification = class { static permission = 'granted'; static requestPermission() { return Promise.resolve('granted'); } constructor(title, options) { window.shown.push(title + ': ' + options.body); } }; }");
        await page.CreateTeamAsync("Pings", "Ana", "ana.web@example.com");
        await page.SpawnAsync("Tidy the README", "mock");
        await page.Locator("#agent-status.completed").WaitForAsync();
        await page.WaitForFunctionAsync("() => window.shown.length === 1");
        (await page.EvaluateAsync<string[]>("() => window.shown")).ShouldBe(["Your agent finished: Tidy the README"]);

        // A reconnect reloads the agents (already finished): no new notification.
        await page.Context.SetOfflineAsync(true);
        await page.Locator("#connection.down").WaitForAsync();
        await page.Context.SetOfflineAsync(false);
        await page.Locator("#connection.live").WaitForAsync();
        await Task.Delay(500);
        (await page.EvaluateAsync<int>("() => window.shown.length")).ShouldBe(1);
    }

    [Fact]
    public async Task LongOutput_StaysSmallInThePage_AndEndsWithTheLastLine()
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings());
        var page = await browser.NewPageAsync(server);
        await page.CreateTeamAsync("Long", "Lee", "lee.web@example.com");
        await page.SpawnAsync("count", "lines");
        await page.WaitForFunctionAsync("() => window.covibe.view && window.covibe.view.complete", null, new() { Timeout = 60_000 });
        (await page.Locator("#output-readable > *").CountAsync()).ShouldBeLessThanOrEqualTo(1500);
        await page.Locator("#output-readable .trimmed").WaitForAsync();
        (await page.Locator("#output-readable > *").Last.TextContentAsync()).ShouldBe("20000");
        (await page.Locator("#output-raw").TextContentAsync())!.ShouldEndWith("19999\n20000\n");
        (await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth")).ShouldBeTrue();
    }

    [Fact]
    public async Task AccessToken_IsRenewedSilently_BeforeItExpires()
    {
        // One-minute tokens: the page renews a minute before expiry, i.e. at once (at least 5 s in).
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Auth:AccessTokenMinutes"] = "1" });
        var page = await browser.NewPageAsync(server);
        var renewed = page.WaitForResponseAsync(r => r.Url.EndsWith("/api/auth/refresh", StringComparison.Ordinal) && r.Status == 200,
            new() { Timeout = 30_000 });
        await page.CreateTeamAsync("Fresh", "Fay", "fay.web@example.com");
        await renewed;
        // Still signed in and live, with nothing done by the user.
        await page.Locator("#connection.live").WaitForAsync();
        await page.TabAsync("Workshop");
        await page.GetByLabel("Message").FillAsync("still here");
        await page.Locator("#chat-form").GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await page.Locator("#chat").GetByText("still here").WaitForAsync();
    }

    [Fact]
    public async Task Reload_KeepsTheUserSignedIn_WithNoTokenInScriptReadableStorage()
    {
        await using var server = await TestServer.StartAsync();
        var page = await browser.NewPageAsync(server);
        await page.CreateTeamAsync("Sticky", "Sam", "sam.web@example.com");
        await page.ReloadAsync();
        await page.Locator("#connection.live").WaitForAsync();
        (await page.Locator("#team-name").TextContentAsync()).ShouldBe("Sticky");
        (await page.EvaluateAsync<int>("() => localStorage.length + sessionStorage.length")).ShouldBe(0);
        (await page.EvaluateAsync<string>("() => document.cookie")).ShouldBeEmpty("the refresh cookie is HttpOnly");
        page.Url.ShouldNotContain("token");

        // Log out, then back in with email and password.
        await page.GetByRole(AriaRole.Button, new() { Name = "Menu" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await page.Locator("#auth:not([hidden])").WaitForAsync();
        await page.GetByRole(AriaRole.Tab, new() { Name = "Log in" }).ClickAsync();
        await page.Locator("#form-login").GetByLabel("Email").FillAsync("sam.web@example.com");
        await page.Locator("#form-login").GetByLabel("Password").FillAsync("not the password");
        await page.Locator("#form-login").GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.Locator("#auth-error").GetByText("email or password is wrong").WaitForAsync();
        await page.Locator("#form-login").GetByLabel("Password").FillAsync(TestServer.Password);
        await page.Locator("#form-login").GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.Locator("#connection.live").WaitForAsync();
        (await page.Locator("#team-name").TextContentAsync()).ShouldBe("Sticky");
    }

    [Fact]
    public async Task AReloadWhileTheServerCannotBeReached_WaitsForIt_AndKeepsTheMemberSignedIn()
    {
        await using var server = await TestServer.StartAsync();
        var page = await browser.NewPageAsync(server);
        await page.CreateTeamAsync("Patchy", "Pat", "pat.web@example.com");

        // A phone between networks, then a proxy whose node is restarting: neither is the server saying the login ended.
        var tries = 0;
        await page.RouteAsync("**/api/auth/refresh", async route =>
        {
            switch (Interlocked.Increment(ref tries))
            {
                case 1: await route.AbortAsync("internetdisconnected"); break;
                case 2: await route.FulfillAsync(new() { Status = 502, Body = "Bad Gateway" }); break;
                default: await route.ContinueAsync(); break;
            }
        });
        await page.ReloadAsync();
        await page.Locator("#boot").GetByText("Cannot reach Covibe; trying again").WaitForAsync();
        await page.Locator("#connection.live").WaitForAsync();
        (await page.Locator("#team-name").TextContentAsync()).ShouldBe("Patchy");
        (await page.Locator("#boot").IsHiddenAsync()).ShouldBeTrue();
        tries.ShouldBe(3);

        // Renewals asked for at once (the timer, a 401 retried, a reconnect) are one request: the cookie rotates, and
        // a second use of it would end the login.
        (await page.EvaluateAsync<bool[]>("async () => { const { refresh } = await import('./session.js'); return Promise.all([refresh(), refresh(), refresh()]); }"))
            .ShouldBe([true, true, true]);
        tries.ShouldBe(4);
        await page.ReloadAsync();
        await page.Locator("#connection.live").WaitForAsync();
        tries.ShouldBe(5, "still signed in: the login was not ended by a reused cookie");

        // The server saying the login has ended still signs the member out.
        await page.UnrouteAllAsync();
        await page.RouteAsync("**/api/auth/refresh", route => route.FulfillAsync(new() { Status = 401, Body = "{}" }));
        await page.ReloadAsync();
        await page.Locator("#auth:not([hidden])").WaitForAsync();
    }

    [Fact]
    public async Task Desktop_ShowsEachTab()
    {
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings(mockDelayMs: 100, mockSteps: 8));
        var page = await browser.NewPageAsync(server, 1280, 800);
        await page.ScreenshotAsync("sign-in-1280");
        await page.CreateTeamAsync("Rocket", "Sarah", "sarah.desk@example.com");
        await page.SpawnAsync("Add OAuth login", "mock-code-writer");
        await page.Locator("#output-readable .ev-result").WaitForAsync();
        await page.ScreenshotAsync("command-deck-1280");
        await page.TabAsync("Workshop");
        await page.GetByLabel("Message").FillAsync("Shipping the OAuth flow after lunch");
        await page.Locator("#chat-form").GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await page.Locator("#chat").GetByText("Shipping the OAuth flow").WaitForAsync();
        await page.ScreenshotAsync("workshop-1280");
        await page.TabAsync("Showcase");
        await page.ScreenshotAsync("showcase-1280");
        // From the keyboard: arrows move between the tabs and open them.
        await page.GetByRole(AriaRole.Tab, new() { Name = "Showcase" }).FocusAsync();
        await page.Keyboard.PressAsync("ArrowRight");
        await page.Locator("#nav-deck[aria-selected=true]:focus").WaitForAsync();
        (await page.Locator("#deck").IsVisibleAsync()).ShouldBeTrue();
        await page.Keyboard.PressAsync("ArrowLeft");
        await page.Locator("#nav-showcase[aria-selected=true]:focus").WaitForAsync();
        await page.Keyboard.PressAsync("Home");
        await page.Locator("#nav-deck[aria-selected=true]:focus").WaitForAsync();
        // Nothing wider than the screen at either size.
        (await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth")).ShouldBeTrue();
        var phone = await browser.NewPageAsync(server);
        await phone.ScreenshotAsync("sign-in-390");
        (await phone.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth")).ShouldBeTrue();
    }

    [Fact]
    public async Task Terminal_InTheWorkshop_RunsCommands_SurvivesAReload_AndTeammatesWatchWhenShared()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Terminals:DefaultShell"] = "/bin/sh" });
        var sarah = await browser.NewPageAsync(server, 1280, 800);
        await sarah.CreateTeamAsync("Rocket", "Sarah", "sarah.term@example.com");
        var invite = await sarah.InviteCodeAsync();
        var miguel = await browser.NewPageAsync(server);
        await miguel.JoinAsync(invite, "Miguel", "miguel.term@example.com");

        await sarah.TabAsync("Workshop");
        await sarah.GetByRole(AriaRole.Button, new() { Name = "New terminal" }).ClickAsync();
        await sarah.Locator("#terminal-status").GetByText("Connected").WaitForAsync();
        var screen = sarah.Locator("#terminal .xterm-rows");
        await sarah.Locator("#terminal .xterm").ClickAsync();
        await sarah.Keyboard.TypeAsync("echo hello-$((6*7)) size=$(stty size)");
        await sarah.Keyboard.PressAsync("Enter");
        await screen.GetByText("hello-42").WaitForAsync();
        // The terminal was sized to the page (wider than the classic 80 columns at 1280 px).
        var size = await sarah.WaitForFunctionAsync("() => { const m = document.querySelector('#terminal .xterm-rows').textContent.match(/size=(\\d+) (\\d+)/); return m && Number(m[2]); }");
        var wide = await size.JsonValueAsync<int>();
        wide.ShouldBeGreaterThan(80);
        await sarah.ScreenshotAsync("workshop-terminal-1280");
        // A narrower window: the terminal follows, and programs see the new width.
        await sarah.SetViewportSizeAsync(900, 800);
        await sarah.WaitForFunctionAsync("wide => window.covibe.terminals.view.cols < wide", wide);
        await sarah.Locator("#terminal .xterm").ClickAsync();
        await sarah.Keyboard.TypeAsync("echo narrow=$(stty size)");
        await sarah.Keyboard.PressAsync("Enter");
        var narrow = await sarah.WaitForFunctionAsync("() => { const m = document.querySelector('#terminal .xterm-rows').textContent.match(/narrow=(\\d+) (\\d+)/); return m && Number(m[2]); }");
        (await narrow.JsonValueAsync<int>()).ShouldBeLessThan(wide);

        // Reload: the terminal lives on the server; pick it again and carry on.
        await sarah.ReloadAsync();
        await sarah.Locator("#connection.live").WaitForAsync();
        await sarah.TabAsync("Workshop");
        var id = await sarah.WaitForFunctionAsync("() => { const o = [...document.querySelectorAll('#terminal-sessions option')].find(o => o.value); return o && o.value; }");
        await sarah.Locator("#terminal-sessions").SelectOptionAsync(await id.JsonValueAsync<string>());
        await screen.GetByText("hello-42").WaitForAsync();
        await sarah.Locator("#terminal .xterm").ClickAsync();
        await sarah.Keyboard.TypeAsync("echo again-$((1+1))");
        await sarah.Keyboard.PressAsync("Enter");
        await screen.GetByText("again-2").WaitForAsync();

        // Shared with the team, Miguel watches it read-only.
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Share with team" }).ClickAsync();
        await sarah.Locator("#terminal-share[aria-pressed=true]").WaitForAsync();
        await miguel.TabAsync("Workshop");
        await miguel.WaitForFunctionAsync("() => [...document.querySelectorAll('#terminal-sessions option')].some(o => o.value)");
        await miguel.Locator("#terminal-sessions").SelectOptionAsync(await id.JsonValueAsync<string>());
        await miguel.Locator("#terminal-status").GetByText("read-only").WaitForAsync();
        await miguel.Locator("#terminal .xterm-rows").GetByText("again-2").WaitForAsync();
        await sarah.Keyboard.TypeAsync("echo live-$((2+3))");
        await sarah.Keyboard.PressAsync("Enter");
        await miguel.Locator("#terminal .xterm-rows").GetByText("live-5").WaitForAsync();
        (await miguel.Locator("#terminal-close").IsVisibleAsync()).ShouldBeFalse();

        // Miguel's network drops while Sarah works; back online, his page shows what he missed.
        await miguel.Context.SetOfflineAsync(true);
        await miguel.Locator("#terminal-status").GetByText("Reconnecting").WaitForAsync();
        await sarah.Keyboard.TypeAsync("echo while-away-$((2+2))");
        await sarah.Keyboard.PressAsync("Enter");
        await screen.GetByText("while-away-4").WaitForAsync();
        await miguel.Context.SetOfflineAsync(false);
        await miguel.Locator("#terminal .xterm-rows").GetByText("while-away-4").WaitForAsync();
        await miguel.Locator("#terminal-status").GetByText("read-only").WaitForAsync();
        await miguel.ScreenshotAsync("workshop-terminal-390");
        (await miguel.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth")).ShouldBeTrue();
    }

    [Fact]
    public async Task Terminal_OnAPhone_HasTheKeysItsKeyboardLacks()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Terminals:DefaultShell"] = "/bin/sh" });
        var page = await browser.NewPageAsync(server);
        await page.CreateTeamAsync("Pocket", "Pia", "pia.term@example.com");
        await page.TabAsync("Workshop");
        await page.GetByRole(AriaRole.Button, new() { Name = "New terminal" }).ClickAsync();
        await page.Locator("#terminal-status").GetByText("Connected").WaitForAsync();
        var screen = page.Locator("#terminal .xterm-rows");
        await page.Locator("#terminal .xterm").ClickAsync();
        await page.Keyboard.TypeAsync("sleep 29.7");
        await page.Keyboard.PressAsync("Enter");
        await ForegroundJob.WaitAsync("sleep", "29.7");
        await page.GetByRole(AriaRole.Button, new() { Name = "Control C" }).ClickAsync();
        await page.Keyboard.TypeAsync("echo rc=$?");
        await page.Keyboard.PressAsync("Enter");
        await screen.GetByText("rc=130").WaitForAsync(new() { Timeout = 10_000 });
        (await page.GetByRole(AriaRole.Toolbar, new() { Name = "Keys a phone keyboard lacks" }).GetByRole(AriaRole.Button).CountAsync()).ShouldBe(8);
        (await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth")).ShouldBeTrue();
    }
}
