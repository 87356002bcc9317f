using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Live changes (issue 25, point 3): what an agent on the team's repository writes reaches every member as
/// <c>agent_changes</c> and over REST, file by file with its diff, following what is really in its tree (its own
/// commits, another branch), never more than the agent itself could read.
/// </summary>
public sealed class AgentChangesTests : IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    internal static Dictionary<string, string> Settings(Dictionary<string, string>? settings = null)
    {
        settings = AgentTreeTests.Settings(settings);
        // Runs each line it reads, in its work tree, and says so.
        AgentHelpers.AddType(settings, "shell", ["sh", "-c", "echo ready; while IFS= read -r line; do sh -c \"$line\"; echo \"ran: $line\"; done"]);
        return settings;
    }

    internal static async Task<(string Url, GitHttpServer Forge)> ConnectAsync(HttpClient owner, GitRepo source)
    {
        var forge = await GitHttpServer.StartAsync();
        var (url, _) = forge.Serve(source);
        (await owner.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);
        return (url, forge);
    }

    private static async Task<AgentChangesDto> ChangesAsync(HttpClient client, string agentId)
    {
        using var reply = await client.GetAsync($"/api/agent/{agentId}/changes");
        reply.StatusCode.ShouldBe(HttpStatusCode.OK, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<AgentChangesDto>())!;
    }

    private static bool ChangesOf(JsonElement m, string agentId, Func<JsonElement, bool> holds) =>
        m.GetProperty("type").GetString() == "agent_changes" && m.GetProperty("agentId").GetString() == agentId && holds(m);

    private static string[] Paths(JsonElement m) => [.. m.GetProperty("files").EnumerateArray().Select(f => $"{f.GetProperty("status").GetString()} {f.GetProperty("path").GetString()}")];

    [Fact]
    public async Task AWriteReachesATeammateLive_FileByFileWithItsDiff_AndTheViewFollowsTheAgentsOwnCommitsAndBranches()
    {
        var baseCommit = _source.Commit("base", new() { ["README.md"] = "one\ntwo\n", ["old.txt"] = "old\n", ["name.js"] = "let a = 1;\n" });
        await using var server = await TestServer.StartAsync(settings: Settings());
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        using var miguel = server.Client(member.AccessToken);
        var (_, forge) = await ConnectAsync(ann, _source);
        await using var _ = forge;
        await using var watching = await server.ConnectAsync(member.AccessToken);
        await watching.ReceiveAsync("team_joined");

        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "edit things", "shell");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).Contains("ready"), "the agent ready");
        async Task RunAsync(string line)
        {
            (await ann.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest(line + "\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        // A new file: the teammate hears it, with its lines; REST says the same; its diff is there.
        await RunAsync("printf 'hello\\n' > 'new file.txt'");
        var heard = await watching.ReceiveAsync(m => ChangesOf(m, agent.Id, c => Paths(c).Contains("A new file.txt")), TimeSpan.FromSeconds(20), "agent_changes with the new file");
        (heard.GetProperty("added").GetInt32(), heard.GetProperty("removed").GetInt32(), heard.GetProperty("head").GetString()).ShouldBe((1, 0, baseCommit));
        var changes = (await ChangesAsync(miguel, agent.Id));
        (changes.WorkBranch, changes.Branch, changes.BaseCommit).ShouldBe((agent.WorkBranch, agent.WorkBranch, baseCommit));
        changes.Files.ShouldHaveSingleItem().ShouldBe(new ChangedFileDto("new file.txt", "A", 1, 0));
        var diff = await miguel.GetStringAsync($"/api/agent/{agent.Id}/changes/diff?path={Uri.EscapeDataString("new file.txt")}");
        diff.ShouldContain("+hello");
        diff.ShouldContain("new file mode");

        // Modified, deleted, renamed.
        await RunAsync("printf 'one\\nTWO\\nthree\\n' > README.md; rm old.txt; git mv name.js renamed.js");
        heard = await watching.ReceiveAsync(m => ChangesOf(m, agent.Id, c => Paths(c).Contains("R renamed.js") && Paths(c).Contains("D old.txt") && Paths(c).Contains("M README.md")),
            TimeSpan.FromSeconds(20), "agent_changes with the edits");
        changes = (await ChangesAsync(miguel, agent.Id));
        changes.Files.Single(f => f.Path == "README.md").ShouldBe(new ChangedFileDto("README.md", "M", 2, 1));
        changes.Files.Single(f => f.Path == "renamed.js").OldPath.ShouldBe("name.js");
        (await miguel.GetStringAsync($"/api/agent/{agent.Id}/changes/diff")).ShouldContain("-two");

        // The agent commits by itself: the same changes, a new head. Then it switches branches: the view says so.
        await RunAsync("git add -A && git commit -qm 'my own commit'");
        heard = await watching.ReceiveAsync(m => ChangesOf(m, agent.Id, c => c.GetProperty("head").GetString() != baseCommit), TimeSpan.FromSeconds(20), "agent_changes with its commit");
        Paths(heard).ShouldContain("A new file.txt");
        await RunAsync("git checkout -q -b elsewhere && printf 'x\\n' > more.txt");
        await watching.ReceiveAsync(m => ChangesOf(m, agent.Id, c => c.GetProperty("branch").GetString() == "elsewhere" && Paths(c).Contains("A more.txt")),
            TimeSpan.FromSeconds(20), "agent_changes on the other branch");
        (await ChangesAsync(miguel, agent.Id)).Branch.ShouldBe("elsewhere");

        // Another team's member finds nothing; an agent without a branch of its own says why.
        var stranger = await server.CreateTeamAsync("Other", "Olga");
        using (var olga = server.Client(stranger.Auth.AccessToken))
        {
            (await olga.GetAsync($"/api/agent/{agent.Id}/changes")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
            (await olga.GetAsync($"/api/agent/{agent.Id}/changes/diff")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        }
        var plain = (await (await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "echo", TeamRepository: false))).Content.ReadFromJsonAsync<AgentDto>())!;
        (await (await ann.GetAsync($"/api/agent/{plain.Id}/changes")).ShouldBeProblemAsync(HttpStatusCode.Conflict, "no-work-tree")).ToString().ShouldContain("does not work on the team's repository");
        await ann.DeleteAsync($"/api/agent/{agent.Id}");
        await ann.DeleteAsync($"/api/agent/{plain.Id}");
    }

    [Fact]
    public async Task TheMockCodeWriter_WritesTheFilesItSays_AndItsSummaryIsTheCommitMessageProposed()
    {
        _source.Commit("base", new() { ["README.md"] = "base\n" });
        await using var server = await TestServer.StartAsync(settings: Settings());
        var owner = await server.CreateTeamAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        var (_, forge) = await ConnectAsync(ann, _source);
        await using var _ = forge;
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "Add the steps", "mock-code-writer");
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
        var changes = await Eventually.UntilAsync(() => ChangesAsync(ann, agent.Id), c => c.Files.Length == 3, "the three files it wrote");
        changes.Files.Select(f => f.Path).ShouldBe(["src/step2.ts", "src/step4.ts", "src/step6.ts"]);
        changes.ProposedMessage.ShouldBe("Add the steps\n\nDone: Add the steps\n\nWrote src/step2.ts, src/step4.ts, src/step6.ts.");
    }

    [Fact]
    public async Task ReadingTheChanges_ShowsNothingTheAgentCouldNotRead_ThroughALinkOrATreeSwappedForALink()
    {
        _source.Commit("base", new() { ["README.md"] = "base\n" });
        await using var server = await TestServer.StartAsync(settings: Settings());
        var owner = await server.CreateTeamAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        var (_, forge) = await ConnectAsync(ann, _source);
        await using var _ = forge;
        // What an attacker wants: a file of the server's, and one only root reads.
        var secret = "host-secret-" + Guid.NewGuid().ToString("N");
        var secretFile = Path.Combine(server.DataDirectory, "host-secret.txt");
        await File.WriteAllTextAsync(secretFile, secret);
        File.SetUnixFileMode(secretFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "leak", "shell");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).Contains("ready"), "the agent ready");
        async Task RunAsync(string line) =>
            (await ann.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest(line + "\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);

        await RunAsync($"ln -s {secretFile} leak && ln -s /etc/shadow shadow");
        await Eventually.UntilAsync(async () => (await ChangesAsync(ann, agent.Id)).Files.Length == 2, "both links listed");
        var diff = await ann.GetStringAsync($"/api/agent/{agent.Id}/changes/diff");
        diff.ShouldContain($"+{secretFile}"); // a link is its target's name
        diff.ShouldNotContain(secret);
        diff.ShouldNotContain("root:");

        // The whole tree swapped for a link to the server's data directory: read where the agent stands, it leads nowhere.
        await RunAsync($"cd .. && mv {agent.Id} moved-away && ln -s {server.DataDirectory} {agent.Id}");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).Contains("ran: cd .."), "the swap made");
        using (var reply = await ann.GetAsync($"/api/agent/{agent.Id}/changes/diff"))
        {
            (await reply.Content.ReadAsStringAsync()).ShouldNotContain(secret);
        }
        using (var reply = await ann.GetAsync($"/api/agent/{agent.Id}/changes"))
        {
            (await reply.Content.ReadAsStringAsync()).ShouldNotContain("host-secret.txt");
        }
        await ann.DeleteAsync($"/api/agent/{agent.Id}");
    }

    public void Dispose() => _source.Dispose();
}
