using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Covibe.Server.Tests;

/// <summary>
/// The Command Deck's output view under load, in a real Chromium: it keeps up with an agent printing 1 MiB/s in either
/// view with a bounded page, and a member who opens an agent with a 22 MB history sees its newest output at once and
/// can download the whole of it. The long tasks each test saw are written to its output (docs/benchmarks.md). They run
/// alone: with the rest of the suite beside it on a 2-core machine, the page was 6 times slower (a terminal's flood shown
/// after 36 s instead of 5.5), and a wall-time measure then measures the suite.
/// </summary>
[Collection(SerialGroup.Name)]
public sealed class OutputPageTests(BrowserFixture browser, ITestOutputHelper output) : IClassFixture<BrowserFixture>
{
    // A freeze a person would feel. Long tasks are wall time: on a loaded 2-core machine a 200 ms task once measured
    // 1,018 ms, and a 370 ms one 1,378. The pages these replaced froze for seconds at a time; the strict 50 ms goal is
    // measured in docs/benchmarks.md, not here.
    private const double FreezeMs = 2_000;

    // The length of every task of the page's main thread over 50 ms from now on, in milliseconds.
    private const string WatchLongTasks =
        "() => { window.longTasks = []; new PerformanceObserver(l => { for (const e of l.getEntries()) window.longTasks.push(e.duration); }).observe({ type: 'longtask' }); }";

    // What the open view has read and drawn, and where it is scrolled: said when a test fails to see the end.
    private const string WhereThePageIs = """
        async () => {
          const { state } = await import('./state.js');
          const v = state.view, o = document.querySelector('#output'), raw = document.querySelector('#output-raw');
          return JSON.stringify({ next: v?.next, complete: v?.complete, pending: v?.pending.length, scheduled: v?.scheduled,
            rawBlocks: raw.children.length, rawEnd: raw.textContent.slice(-120), jumpEnd: !document.querySelector('#jump-end').hidden,
            scroll: [o.scrollTop, o.clientHeight, o.scrollHeight], hidden: document.hidden });
        }
        """;

    [Theory]
    [InlineData("Readable")]
    [InlineData("Raw")]
    public async Task FollowingAnAgentAt1MiBPerSecond_ThePageKeepsUp_AndStaysSmall(string view)
    {
        await using var server = await StartAsync();
        // About 8 s of stream-json at 1 MiB/s, followed from its start.
        const int lines = 20_000;
        var (owner, page, agent) = await FollowAsync(server, "Load", "Stream [[rate=1048576]] [[lines=20000]]", view);
        await page.EvaluateAsync(WatchLongTasks);
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(60));

        // The page is at the end a moment after the agent is (before, the Raw view fell minutes behind).
        var shown = page.Locator(view == "Raw" ? "#output-raw" : "#output-readable");
        try
        {
            await shown.GetByText($"step {lines} of {lines}.").WaitForAsync(new() { Timeout = 10_000 });
        }
        finally
        {
            output.WriteLine($"{view}: the page at the end: {await page.EvaluateAsync<string>(WhereThePageIs)}");
        }
        await page.Locator("#agent-status").GetByText("completed").WaitForAsync(new() { Timeout = 10_000 });
        // And still following: the end is where the member is looking (the Raw view once lost its place, its blocks
        // growing to their real height after the frame that scrolled to them).
        await Assertions.Expect(shown.GetByText($"step {lines} of {lines}.")).ToBeInViewportAsync();
        (await page.Locator("#jump-end").IsHiddenAsync()).ShouldBeTrue();
        var longTasks = await page.EvaluateAsync<double[]>("() => window.longTasks");
        output.WriteLine($"{view}: {longTasks.Length} long tasks over 50 ms while following: {string.Join(", ", longTasks.Select(t => $"{t:0} ms"))}");
        longTasks.ShouldAllBe(t => t < FreezeMs, "the page froze while following the agent");

        // What the page holds stays bounded, whatever the agent printed (13 MB here).
        var elements = await page.EvaluateAsync<int>("() => document.querySelectorAll('#output *').length");
        var characters = await page.EvaluateAsync<int>("() => document.querySelector('#output').textContent.length");
        output.WriteLine($"{view}: {elements} elements and {characters} characters in the output view");
        elements.ShouldBeLessThan(6_000);
        characters.ShouldBeLessThan(2_500_000);
    }

    [Theory]
    [InlineData("Readable")]
    [InlineData("Raw")]
    public async Task AMemberWhoScrollsUp_StaysWhereTheyRead_UntilTheyJumpToTheEnd(string view)
    {
        await using var server = await StartAsync();
        // About 9 s at 100 KiB/s.
        var (owner, page, agent) = await FollowAsync(server, "Reading", "Stream [[rate=102400]] [[lines=2000]]", view);
        var shown = page.Locator(view == "Raw" ? "#output-raw" : "#output-readable");
        await shown.GetByText("step 300 of 2000.").WaitForAsync();

        // The member scrolls up to read: new output waits below (the views would otherwise trim what they read from
        // under them), and the jump button says how much.
        await page.Locator("#output").HoverAsync();
        await page.Mouse.WheelAsync(0, -1500);
        var jump = page.Locator("#jump-end");
        await jump.WaitForAsync();
        var reading = await page.EvaluateAsync<double>("() => document.querySelector('#output').scrollTop");
        await Assertions.Expect(jump).ToHaveTextAsync(new Regex(@"^↓ 0\.[3-9] MB new · Jump to end$"), new() { Timeout = 20_000 });
        (await page.EvaluateAsync<double>("() => document.querySelector('#output').scrollTop")).ShouldBe(reading, 1, "the page moved the member from what they were reading");

        // "Jump to end" draws what waited, and the view follows the agent to its end.
        await page.GetByRole(AriaRole.Button, new() { Name = "Jump to end" }).ClickAsync();
        await jump.WaitForAsync(new() { State = WaitForSelectorState.Hidden });
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(60));
        await Assertions.Expect(shown.GetByText("step 2000 of 2000.")).ToBeInViewportAsync(new() { Timeout = 10_000 });
        (await page.Locator("#jump-end").IsHiddenAsync()).ShouldBeTrue();
    }

    [Fact]
    public async Task AMemberWhoReadsWhileAFastAgentPrints_JumpsToItsNewestOutput_AndIsToldWhatWasSkipped()
    {
        await using var server = await StartAsync();
        const int lines = 20_000;
        var (owner, page, agent) = await FollowAsync(server, "Skimming", $"Stream [[rate=1048576]] [[lines={lines}]]");
        await page.Locator("#output-readable").GetByText(new Regex($@"step \d+ of {lines}\.")).First.WaitForAsync();
        await page.Locator("#output").HoverAsync();
        await page.Mouse.WheelAsync(0, -1500);

        // More waits than the page keeps: it holds only the newest part, and says how much is new.
        var jump = page.Locator("#jump-end");
        await Assertions.Expect(jump).ToHaveTextAsync(new Regex(@"^↓ [3-9]\.\d MB new · Jump to end$"), new() { Timeout = 20_000 });
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(60));
        await jump.ClickAsync();

        // The newest output, the end in view, and what was not drawn said where it was.
        await Assertions.Expect(page.Locator("#output-readable").GetByText($"step {lines} of {lines}.")).ToBeInViewportAsync(new() { Timeout = 10_000 });
        await Assertions.Expect(page.Locator("#output-readable > :first-child")).ToHaveTextAsync(new Regex("download the whole output to read it"));
        await page.Locator("#view-raw").ClickAsync();
        // Above the newest part, off screen (a raw block off screen is not drawn: attached, not visible).
        await Assertions.Expect(page.Locator("#output-raw > .trimmed")).ToHaveTextAsync(new Regex(@"^… \d+\.\d MB of output skipped to keep up; download the whole output to read it\.\s*$"));
        await Assertions.Expect(page.Locator("#output-raw").GetByText($"step {lines} of {lines}.")).ToBeInViewportAsync();
    }

    [Fact]
    public async Task ALateJoiner_SeesWhoDidWhat_InPlaceInTheTail()
    {
        await using var server = await StartAsync();
        var owner = await server.CreateTeamAsync("Tail", "Sarah");
        using var api = server.Client(owner.Auth.AccessToken);

        // A first turn of about 1.3 MB, then Sarah's next question: what the agent did after it is in the tail.
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "First question [[lines=3000]]", "claude-chat");
        await Eventually.UntilAsync(() => server.GetAgentAsync(owner.Auth.AccessToken, agent.Id), a => a.Status == "waiting", "the first turn ends");
        (await api.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("Second question [[lines=2]]"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await api.PostAsync($"/api/agent/{agent.Id}/end", null);
        var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        done.OutputBytes.ShouldBeGreaterThan(1024 * 1024 + 100_000, "the first turn starts before the tail");

        var page = await browser.NewPageAsync(server, 1280, 800);
        await page.LogInAsync(owner.Auth.User.Email);
        await page.Locator("#agents").GetByText("First question").ClickAsync();
        await page.Locator("#output-readable").GetByText("step 2 of 2.").WaitForAsync();
        await page.Locator("#output-earlier").GetByText("Showing the newest output").WaitForAsync();

        // Her question between the turn it followed and the one it started, told once.
        var shown = await page.Locator("#output-readable > *").AllTextContentsAsync();
        var asked = shown.ToList().FindIndex(t => t == "Sarah sent: Second question [[lines=2]]");
        asked.ShouldBeGreaterThan(0, "the action is shown in the tail");
        shown[asked - 1].ShouldStartWith("✓", Case.Sensitive, "after the first turn's result");
        shown.Skip(asked + 1).ShouldContain(t => t.Contains("Working on \"Second question\": step 1 of 2."));
        shown.Count(t => t.StartsWith("Sarah sent:", StringComparison.Ordinal)).ShouldBe(1);
    }

    [Fact]
    public async Task AnAgentsLastLine_WithoutALineBreak_IsShownOnceItEnds_AfterAllThatCameBefore()
    {
        // 1.3 MB at once, then words with no line break: the end arrives while the page is still drawing what came before.
        await using var server = await AgentApprovalTests.StartAsync(s =>
            AgentHelpers.AddType(s, "burst", ["sh", "-c", "seq 1 200000; printf 'the last words'"]));
        var (owner, page, agent) = await FollowAsync(server, "Burst", "burst", type: "burst");
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);

        var last = page.Locator("#output-readable > :last-child");
        await Assertions.Expect(last).ToHaveTextAsync("the last words", new() { Timeout = 10_000 });
        await Assertions.Expect(last).ToBeInViewportAsync();
        (await page.Locator("#output-readable > *").Nth(-2).TextContentAsync()).ShouldBe("200000", "the words come after every line before them");
    }

    [Fact]
    public async Task ALateJoinerOfA22MBHistory_SeesTheNewestOutputAtOnce_AndCanDownloadAllOfIt()
    {
        await using var server = await StartAsync();
        var owner = await server.CreateTeamAsync("History", "Sarah");
        const int lines = 50_000;
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, $"Long history [[lines={lines}]]", "claude");
        var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(120));
        done.OutputBytes.ShouldBeInRange(22_000_000, 24_000_000);

        var page = await browser.NewPageAsync(server, 390, 844);
        await page.LogInAsync(owner.Auth.User.Email);
        await page.EvaluateAsync(WatchLongTasks);
        var clock = Stopwatch.StartNew();
        await page.Locator("#agents").GetByText("Long history").ClickAsync();
        await page.Locator("#output-readable").GetByText($"step {lines} of {lines}.").WaitForAsync(new() { Timeout = 3_000 });
        output.WriteLine($"newest output shown {clock.ElapsedMilliseconds} ms after the click; long tasks: {string.Join(", ", await page.EvaluateAsync<double[]>("() => window.longTasks"))}");
        await page.Locator("#output-earlier").GetByText($"Showing the newest output: the first {(done.OutputBytes - 1024 * 1024) / 1e6:0.0} MB are in the download.").WaitForAsync();

        // The whole output, as the agent wrote it, is one click away.
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Button, new() { Name = "Download the whole output" }).ClickAsync());
        (await File.ReadAllBytesAsync((await download.PathAsync())!)).ShouldBe(AgentHelpers.LogOf(server, agent.Id));
        download.SuggestedFilename.ShouldBe($"agent-{agent.Id}.log");
    }

    [Fact]
    public async Task ATerminalPrintingAtFullSpeed_ShowsTheEnd_WithoutFreezingThePage()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Terminals:DefaultShell"] = "/bin/sh" });
        var page = await browser.NewPageAsync(server, 1280, 800);
        await page.CreateTeamAsync("Flood", "Sarah", "sarah.flood@example.com");
        await page.TabAsync("Workshop");
        await page.GetByRole(AriaRole.Button, new() { Name = "New terminal" }).ClickAsync();
        await page.Locator("#terminal-status").GetByText("Connected").WaitForAsync();
        await page.Locator("#terminal .xterm").ClickAsync();
        await page.EvaluateAsync(WatchLongTasks);
        var clock = Stopwatch.StartNew();
        // About 15 MB as fast as the shell can print it.
        await page.Keyboard.TypeAsync("seq 1 2000000; echo flood-$((40+2))");
        await page.Keyboard.PressAsync("Enter");
        await page.Locator("#terminal .xterm-rows").GetByText("flood-42").WaitForAsync(new() { Timeout = 60_000 });
        var longTasks = await page.EvaluateAsync<double[]>("() => window.longTasks");
        output.WriteLine($"terminal: the end shown after {clock.ElapsedMilliseconds} ms; {longTasks.Length} long tasks over 50 ms: {string.Join(", ", longTasks.Select(t => $"{t:0} ms"))}");
        // xterm.js parses in slices of its own between frames.
        longTasks.ShouldAllBe(t => t < FreezeMs, "the page froze while the terminal printed");
        (await page.EvaluateAsync<double>("() => performance.memory.usedJSHeapSize / 1048576")).ShouldBeLessThan(100, "the page kept what it printed");
    }

    /// <summary>Sarah's new team on <paramref name="server"/>, and her page following its agent on <paramref name="task"/> in <paramref name="view"/>.</summary>
    private async Task<(CreateTeamResponse Owner, IPage Page, AgentDto Agent)> FollowAsync(TestServer server, string team, string task, string view = "Readable", string type = "claude")
    {
        var owner = await server.CreateTeamAsync(team, "Sarah");
        var page = await browser.NewPageAsync(server, 1280, 800);
        await page.LogInAsync(owner.Auth.User.Email);
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, task, type);
        await page.Locator("#agents").GetByText(task.Split(" [[")[0]).First.ClickAsync();
        await page.Locator("#view-" + view.ToLowerInvariant()).ClickAsync();
        return (owner, page, agent);
    }

    private static Task<TestServer> StartAsync() => AgentApprovalTests.StartAsync(s =>
    {
        // Nothing to approve: the agent only prints.
        s["Covibe:Agents:Permissions:Mode"] = "bypass";
        s["Covibe:Agents:Permissions:AllowBypass"] = "true";
    });
}
