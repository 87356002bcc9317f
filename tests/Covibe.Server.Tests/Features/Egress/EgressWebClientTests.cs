using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Covibe.Server.Tests;

/// <summary>The team's egress policy in the web client: the owner sets it in the Workshop, and a refused connection shows at once, saying why.</summary>
public sealed class EgressWebClientTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task TheOwnerSetsAnAllowlist_AndARefusedConnectionOfAnAgentShowsAtOnce()
    {
        var settings = AgentHelpers.Settings();
        // Asks the proxy of HTTPS_PROXY for a tunnel to the host:port it is given.
        AgentHelpers.AddType(settings, "fetch", ["node", "-e",
            "const u = new URL(process.env.HTTPS_PROXY); const s = require('net').connect(Number(u.port), u.hostname, () => s.write(`CONNECT ${process.argv[1]} HTTP/1.1\\r\\n\\r\\n`));" +
            "s.on('data', d => { console.log(String(d).split('\\r\\n')[0]); s.destroy(); }); s.on('error', e => console.log(e.code));", "{task}"]);
        await using var server = await TestServer.StartAsync(settings: settings);
        var sarah = await browser.NewPageAsync(server, 1280, 900);
        await sarah.CreateTeamAsync("Walled", "Sarah", "sarah.egress@example.com");

        await sarah.TabAsync("Workshop");
        await sarah.Locator("#egress-summary").GetByText("may connect anywhere on the internet").WaitForAsync();
        var form = sarah.Locator("#egress-form");
        await form.GetByLabel("Where the team's code may connect").SelectOptionAsync("allowlist");
        await form.GetByRole(AriaRole.Textbox, new() { Name = "Allowlist" }).FillAsync("registry.npmjs.org\n*.github.com\nnot a host");
        await form.GetByRole(AriaRole.Button, new() { Name = "Save the policy" }).ClickAsync();
        await sarah.Locator("#egress-error").GetByText("'not a host' is not a host name").WaitForAsync();
        await form.GetByRole(AriaRole.Textbox, new() { Name = "Allowlist" }).FillAsync("registry.npmjs.org\n*.github.com");
        await form.GetByRole(AriaRole.Button, new() { Name = "Save the policy" }).ClickAsync();
        await sarah.Locator("#egress-summary").GetByText("may connect only to the allowlist").WaitForAsync();
        (await sarah.Locator("#egress-error").InnerTextAsync()).ShouldBeEmpty();

        await sarah.TabAsync("Command Deck");
        await sarah.SpawnAsync("example.org:443", "fetch");
        await sarah.Locator("#output-readable").GetByText("HTTP/1.1 403 Forbidden").WaitForAsync();
        await sarah.Locator("#toast").GetByText("blocked: example.org:443 by the team's egress policy").WaitForAsync();
        await sarah.TabAsync("Workshop");
        await sarah.Locator("#egress-blocked").GetByText("blocked: example.org:443 by the team's egress policy").WaitForAsync();
        await sarah.ScreenshotAsync("workshop-egress-1280");

        // On a phone: the policy, the form and the refusal fit the screen's width.
        await sarah.SetViewportSizeAsync(390, 844);
        await sarah.Locator("#egress-blocked").ScrollIntoViewIfNeededAsync();
        var widths = await sarah.EvaluateAsync<int[]>("() => ['#egress-summary', '#egress-form', '#egress-blocked'].map(s => Math.ceil(document.querySelector(s).getBoundingClientRect().right))");
        widths.ShouldAllBe(right => right <= 390, string.Join(", ", widths));
        (await sarah.EvaluateAsync<int>("() => document.documentElement.scrollWidth")).ShouldBeLessThanOrEqualTo(390, "nothing wider than the phone");
        await sarah.ScreenshotAsync("workshop-egress-390");
    }
}
