using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Covibe.Server.Tests;

/// <summary>An agent's changes in the web client: a teammate on a phone opens its Changes view and watches files come in, each diff readable.</summary>
public sealed class ChangesWebClientTests(BrowserFixture browser) : IClassFixture<BrowserFixture>, IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    [Fact]
    public async Task ATeammateOnAPhone_SeesTheAgentsFilesArriveLive_AndReadsADiff_WhoseTextStaysText()
    {
        _source.Commit("base", new() { ["README.md"] = "one\ntwo\n" });
        await using var server = await TestServer.StartAsync(settings: AgentChangesTests.Settings());
        var owner = await server.CreateTeamAsync("Deck", "Sarah");
        using var sarah = server.Client(owner.Auth.AccessToken);
        var (_, forge) = await AgentChangesTests.ConnectAsync(sarah, _source);
        await using var _ = forge;
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "edit the readme", "shell");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).Contains("ready"), "the agent ready");
        async Task RunAsync(string line) =>
            (await sarah.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest(line + "\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await RunAsync("printf 'one\\nTWO\\n' > README.md");

        var miguel = await browser.NewPageAsync(server, 390, 844);
        await miguel.JoinAsync(owner.Invite.InviteCode, "Miguel", "miguel.changes@example.com");
        await miguel.Locator("#agents").GetByText("edit the readme").ClickAsync();
        await miguel.GetByRole(AriaRole.Button, new() { Name = "Changes (1)" }).ClickAsync();
        await miguel.Locator("#changes-summary").GetByText($"1 file changed, +1 −1 on {agent.WorkBranch}").WaitForAsync();

        // The agent writes another file: it arrives without a reload.
        await RunAsync("printf '<img src=x onerror=\"window.pwned=1\">\\nhello\\n' > page.html");
        await miguel.Locator("#changes-files").GetByText("page.html").WaitForAsync();
        await miguel.GetByRole(AriaRole.Button, new() { Name = "Changes (2)" }).WaitForAsync();
        await miguel.Locator("#changes-files").GetByText("page.html").ClickAsync();
        var diff = miguel.Locator("#changes-diff .d2h-file-wrapper");
        await diff.WaitForAsync();
        await diff.GetByText("hello").WaitForAsync();
        // What the agent wrote is shown as text, never run as markup.
        (await miguel.Locator("#changes-diff img").CountAsync()).ShouldBe(0);
        (await miguel.EvaluateAsync<bool>("() => window.pwned === 1")).ShouldBeFalse();
        await diff.GetByText("<img src=x onerror=\"window.pwned=1\">").WaitForAsync();

        (await miguel.EvaluateAsync<int>("() => document.documentElement.scrollWidth")).ShouldBeLessThanOrEqualTo(390, "nothing wider than the phone");
        await miguel.ScreenshotAsync("command-deck-changes-390");

        // The readable output is one press away.
        await miguel.GetByRole(AriaRole.Button, new() { Name = "Readable" }).ClickAsync();
        await miguel.Locator("#output-readable").GetByText("ran: printf").First.WaitForAsync();
        (await miguel.Locator("#changes").IsHiddenAsync()).ShouldBeTrue();
        await sarah.DeleteAsync($"/api/agent/{agent.Id}");
    }

    [Fact]
    public async Task TheOwnerOnAPhone_CommitsWithTheMessageProposed_AndMergesIntoMain()
    {
        _source.Commit("base", new() { ["README.md"] = "one\n" });
        await using var server = await TestServer.StartAsync(settings: AgentChangesTests.Settings());
        var owner = await server.CreateTeamAsync("Deck", "Sarah");
        using var api = server.Client(owner.Auth.AccessToken);
        await using var forge = await GitHttpServer.StartAsync();
        var (url, forgePath) = forge.Serve(_source);
        (await api.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "Say hello in the readme", "shell");
        await AgentMergeTests.RunAsync(api, agent.Id, "printf 'hello\\n' >> README.md");

        var sarah = await browser.NewPageAsync(server, 390, 844);
        await sarah.GetByRole(AriaRole.Tab, new() { Name = "Log in" }).ClickAsync();
        await sarah.Locator("#form-login").GetByLabel("Email").FillAsync(owner.Auth.User.Email);
        await sarah.Locator("#form-login").GetByLabel("Password").FillAsync(TestServer.Password);
        await sarah.Locator("#form-login").GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await sarah.Locator("#agents").GetByText("Say hello in the readme").ClickAsync();
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Changes (1)" }).ClickAsync();
        var message = sarah.GetByLabel("What the commit does");
        await Eventually.UntilAsync(async () => await message.InputValueAsync() == "Say hello in the readme", "the message proposed from the task");

        await sarah.GetByRole(AriaRole.Button, new() { Name = "Commit", Exact = true }).ClickAsync();
        await sarah.Locator("#changes-branch").GetByText("You committed").WaitForAsync();
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Merge into main" }).ClickAsync();
        await sarah.Locator("#changes-branch").GetByText("merged into main (fast-forward)").WaitForAsync();
        _source.Git("--git-dir", forgePath, "show", "main:README.md").ShouldBe("one\nhello\n");
        (await sarah.EvaluateAsync<int>("() => document.documentElement.scrollWidth")).ShouldBeLessThanOrEqualTo(390, "nothing wider than the phone");
        await sarah.ScreenshotAsync("command-deck-merge-390");

        // Merging again says why not, in the view.
        await sarah.GetByRole(AriaRole.Button, new() { Name = "Merge into main" }).ClickAsync();
        await sarah.Locator("#changes-error").GetByText("already holds everything").WaitForAsync();
        await api.DeleteAsync($"/api/agent/{agent.Id}");
    }

    public void Dispose() => _source.Dispose();
}
