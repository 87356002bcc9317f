using System.Text.RegularExpressions;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Covibe.Server.Tests;

/// <summary>A runner VM from the web client: add it, run the command it shows on the VM, see it online, use it, read its audit log, revoke it.</summary>
public sealed partial class RunnerWebClientTests(SshServer vm, BrowserFixture browser) : IClassFixture<SshServer>, IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task AddARunnerVm_StartItsRunner_RunAnAgentAndATerminalThere_AndRevokeIt_FromTheWorkshop()
    {
        var settings = RunnerTests.Settings(vm);
        settings["Covibe:Terminals:DefaultShell"] = "/bin/bash";
        await using var server = await TestServer.StartAsync(settings: settings);
        var sarah = await browser.NewPageAsync(server, 1280, 900);
        await sarah.CreateTeamAsync("Runners", "Sarah", "sarah.runners@example.com");

        await sarah.TabAsync("Workshop");
        await sarah.Locator("#vm-form").GetByPlaceholder("Name, e.g. build-box").FillAsync("build-box");
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Add a runner VM" }).ClickAsync();
        var command = sarah.Locator("#vm-command-text");
        await command.WaitForAsync();
        var printed = RunnerLine().Match(await command.InnerTextAsync());
        printed.Success.ShouldBeTrue(await command.InnerTextAsync());
        (await sarah.Locator("#vm-command-note").InnerTextAsync()).ShouldContain("not shown again");

        await using var machine = RunnerMachine.Create(vm);
        machine.Start(["--server", printed.Groups["server"].Value, "--token", printed.Groups["token"].Value]);
        // The card notices by itself when the runner connects.
        await sarah.Locator("#vms .vm-online").WaitForAsync(new() { Timeout = 60_000 });
        (await sarah.Locator("#vms .vm-online").InnerTextAsync()).ShouldContain($"runner: {machine.User}@");
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Done" }).ClickAsync();
        (await command.InnerTextAsync()).ShouldBeEmpty("the command is not kept in the page");
        await sarah.ScreenshotAsync("workshop-runner-vm-1280");

        // An agent on it, from the spawn form's "Where".
        await sarah.TabAsync("Command Deck");
        await sarah.Locator("#spawn-toggle").ClickAsync();
        await sarah.Locator("#spawn-form textarea[name=task]").FillAsync("Count on the runner");
        await sarah.Locator("#agent-types").SelectOptionAsync("count");
        await sarah.Locator("#spawn-box").SelectOptionAsync(new SelectOptionValue { Label = "on build-box (online)" });
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Spawn agent" }).ClickAsync();
        await sarah.Locator("#output-raw, #output-readable").GetByText("counted to 300").First.WaitForAsync(new() { Timeout = 60_000 });

        // A terminal on it.
        await sarah.TabAsync("Workshop");
        await sarah.Locator("#terminal-target").SelectOptionAsync(new SelectOptionValue { Label = "on build-box (online)" });
        await sarah.GetByRole(AriaRole.Button, new() { Name = "New terminal" }).ClickAsync();
        await sarah.Locator("#terminal-status").GetByText("Connected").WaitForAsync();
        await sarah.Locator("#terminal .xterm").ClickAsync();
        await sarah.Keyboard.TypeAsync("echo on-runner-$(whoami)");
        await sarah.Keyboard.PressAsync("Enter");
        await sarah.Locator("#terminal .xterm-rows").GetByText($"on-runner-{machine.User}").WaitForAsync();

        // Its audit log, then revoke: the runner stops.
        await sarah.Locator("#vms").GetByRole(AriaRole.Button, new() { Name = "Audit" }).ClickAsync();
        var audit = sarah.Locator("#vms .audit");
        await audit.GetByText("terminal.open").WaitForAsync();
        (await audit.InnerTextAsync()).ShouldContain("agent.start");
        sarah.Dialog += (_, dialog) => dialog.AcceptAsync();
        await sarah.Locator("#vms").GetByRole(AriaRole.Button, new() { Name = "Revoke" }).ClickAsync();
        await sarah.Locator("#vms .vm-revoked").WaitForAsync();
        (await machine.WaitForExitAsync(TimeSpan.FromSeconds(30))).ShouldBe(3);
    }

    [GeneratedRegex(@"covibe runner --server (?<server>\S+) --token (?<token>cvreg_[A-Za-z0-9_-]+)")]
    private static partial Regex RunnerLine();
}
