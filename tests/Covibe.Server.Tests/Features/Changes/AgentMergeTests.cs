using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Merging (issue 25, point 4): two agents on a private repository served over SSH with a deploy key; the first merged into
/// main and the preview deploys it at once; the second, which changed the same line, refused with the file in conflict and
/// nothing changed; brought up to date from main (the markers in its tree), resolved by the agent, committed as the merge
/// of main, and merged; the first updated cleanly afterwards. A teammate without control can do none of it.
/// </summary>
public sealed class AgentMergeTests(SshServer sshd) : IClassFixture<SshServer>, IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    [Fact]
    public async Task MergeIntoMain_ThePreviewDeploysIt_AConflictChangesNothing_UpdateFromMainResolveAndMerge()
    {
        var v1 = _source.Commit("v1", new() { ["index.html"] = "<h1>v1</h1>", ["shared.txt"] = "one\ntwo\nthree\n" });
        var (url, forgePath) = await sshd.ServeRepositoryAsync(_source);
        var settings = AgentChangesTests.Settings(new Dictionary<string, string>(PreviewTests.Settings));
        foreach (var (name, value) in AgentHelpers.Settings())
        {
            settings.TryAdd(name, value);
        }
        await using var server = await TestServer.StartAsync(settings: settings);
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        using var miguel = server.Client(member.AccessToken);
        var key = (await (await ann.PostAsync("/api/team/repository/deploy-key", null)).Content.ReadFromJsonAsync<DeployKeyResponse>())!;
        sshd.Authorize(key.PublicKey);
        (await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url))).StatusCode.ShouldBe(HttpStatusCode.OK);
        using var preview = new PreviewClient(server, owner.Auth.AccessToken);
        var connected = await OkAsync<PreviewConnectedResponse>(await ann.PutAsJsonAsync("/api/preview", new SetPreviewRequest(null)));
        await preview.LiveAsync(v1);
        await using var watching = await server.ConnectAsync(member.AccessToken);
        await watching.ReceiveAsync("team_joined");

        var first = await server.SpawnAsync(owner.Auth.AccessToken, "Say v2", "shell");
        var second = await server.SpawnAsync(owner.Auth.AccessToken, "Say two louder", "shell");
        await RunAsync(ann, first.Id, "printf '<h1>v2</h1>' > index.html && printf 'one\\nTWO from the first\\nthree\\n' > shared.txt");
        await RunAsync(ann, second.Id, "printf 'one\\nTWO from the second\\nthree\\n' > shared.txt");

        // Nothing merges before a commit; a teammate merges and updates nothing.
        await (await ann.PostAsync($"/api/agent/{first.Id}/merge", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "nothing-to-merge");
        var committed = await OkAsync<AgentBranchResponse>(await ann.PostAsync($"/api/agent/{first.Id}/commit", null));
        await (await miguel.PostAsync($"/api/agent/{first.Id}/merge", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await miguel.PostAsync($"/api/agent/{first.Id}/update", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        ForgeHead(forgePath).ShouldBe(v1);

        // The first merges as a fast-forward of main; the team hears who; the preview deploys it without a webhook.
        var merged = await OkAsync<AgentMergeResponse>(await ann.PostAsync($"/api/agent/{first.Id}/merge", null));
        (merged.Commit, merged.FastForward, merged.BaseBranch, merged.PreviewQueued).ShouldBe((committed.Commit, true, "main", true));
        ForgeHead(forgePath).ShouldBe(committed.Commit);
        var heard = await watching.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_branch" && m.GetProperty("action").GetString() == "merge");
        (heard.GetProperty("by").GetString(), heard.GetProperty("commit").GetString()).ShouldBe(("Sarah", committed.Commit));
        // It stays in the team's stream, with who did it: an activity line of the chat, for whoever reads it later.
        var stream = (await miguel.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history?limit=50"))!.Messages.Where(m => m.Kind == "activity").ToList();
        var (mergeLine, commitLine) = ($"merged {first.WorkBranch} into main at {committed.Commit[..7]} (fast-forward)", $"committed {committed.Commit[..7]} on {first.WorkBranch}");
        stream.Any(m => m.UserName == "Sarah" && m.Message.StartsWith(mergeLine, StringComparison.Ordinal)).ShouldBeTrue(string.Join('\n', stream.Select(m => m.Message)));
        stream.Any(m => m.Message.StartsWith(commitLine, StringComparison.Ordinal)).ShouldBeTrue();
        (await preview.LiveAsync(committed.Commit)).RepositoryUrl.ShouldBe(url);
        var (origin, cookie) = await preview.OpenAsync();
        (await preview.FetchAsync(origin, "/", cookie)).Body.ShouldContain("v2");
        // The forge's webhook for the merge, when it comes, deploys nothing again.
        var deploys = (await preview.DeploysAsync()).Length;
        using (var webhook = await ann.SendAsync(PreviewClient.Delivery(owner.Auth.Team.Id, connected.WebhookSecret, committed.Commit)))
        {
            var said = await webhook.Content.ReadFromJsonAsync<WebhookResponse>();
            (said!.Result, said.Message).ShouldBe(("ignored", $"Commit {committed.Commit[..7]} is deployed or queued already."));
        }
        (await preview.DeploysAsync()).Length.ShouldBe(deploys);
        await (await ann.PostAsync($"/api/agent/{first.Id}/merge", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "already-merged");

        // The second changed the same line: refused with the file, and nothing changed anywhere.
        // A message with shell and git option injection is only a message.
        var marker = Path.Combine(Path.GetTempPath(), $"covibe-pwned-{Guid.NewGuid():N}");
        var hostile = $"--amend $(touch {marker} covibe-pwned) `touch {marker} covibe-pwned`\n\n-m; touch {marker} covibe-pwned";
        var secondCommit = (await OkAsync<AgentBranchResponse>(await ann.PostAsJsonAsync($"/api/agent/{second.Id}/commit", new AgentCommitRequest(hostile)))).Commit;
        _source.Git("--git-dir", Mirror(server, owner), "log", "-1", "--format=%B", secondCommit).ShouldStartWith(hostile);
        File.Exists(marker).ShouldBeFalse();
        // Nor in the agent's tree, where the commit is made (a file made there would be listed as changed).
        (await ann.GetFromJsonAsync<AgentChangesDto>($"/api/agent/{second.Id}/changes"))!.Files.ShouldNotContain(f => f.Path.Contains("pwned"));
        var conflict = await (await ann.PostAsync($"/api/agent/{second.Id}/merge", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "merge-conflict");
        conflict.GetProperty("files").EnumerateArray().Select(f => f.GetString()).ShouldBe(["shared.txt"]);
        ForgeHead(forgePath).ShouldBe(committed.Commit);
        MirrorRef(server, owner, second.WorkBranch!).ShouldBe(secondCommit);

        // Brought up to date from main: the conflict left with its markers in the agent's tree, to resolve.
        var update = await OkAsync<AgentUpdateResponse>(await ann.PostAsync($"/api/agent/{second.Id}/update", null));
        update.Conflicts.ShouldBe(["shared.txt"]);
        (update.Commit, update.BaseCommit).ShouldBe((null, committed.Commit));
        var diff = await (await ann.GetAsync($"/api/agent/{second.Id}/changes/diff?path=shared.txt")).Content.ReadAsStringAsync();
        diff.ShouldContain("+<<<<<<< ");
        diff.ShouldContain("+TWO from the second");
        (await ann.GetFromJsonAsync<AgentChangesDto>($"/api/agent/{second.Id}/changes"))!.MergingBase.ShouldBe(committed.Commit);
        // Updating again before the conflict is resolved and committed would mix the two: refused.
        await (await ann.PostAsync($"/api/agent/{second.Id}/update", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "commit-first");

        // The agent resolves it; the commit is the merge of main; merged as a fast-forward now.
        await RunAsync(ann, second.Id, "printf 'one\\nTWO from both\\nthree\\n' > shared.txt");
        var resolved = (await OkAsync<AgentBranchResponse>(await ann.PostAsync($"/api/agent/{second.Id}/commit", null))).Commit;
        _source.Git("--git-dir", Mirror(server, owner), "log", "-1", "--format=%P", resolved).Trim().ShouldBe($"{secondCommit} {committed.Commit}");
        var mergedSecond = await OkAsync<AgentMergeResponse>(await ann.PostAsync($"/api/agent/{second.Id}/merge", null));
        (mergedSecond.Commit, mergedSecond.FastForward).ShouldBe((resolved, true));
        _source.Git("--git-dir", forgePath, "show", "main:shared.txt").ShouldBe("one\nTWO from both\nthree\n");
        await preview.LiveAsync(resolved);

        // The first, behind main now, updates cleanly: a merge commit on its branch, and main's file in its tree.
        var clean = await OkAsync<AgentUpdateResponse>(await ann.PostAsync($"/api/agent/{first.Id}/update", null));
        clean.Conflicts.ShouldBeEmpty();
        _source.Git("--git-dir", Mirror(server, owner), "log", "-1", "--format=%P", clean.Commit!).Trim().ShouldBe($"{committed.Commit} {resolved}");
        await RunAsync(ann, first.Id, "cat shared.txt");
        Encoding.UTF8.GetString(await ann.OutputAsync(first.Id)).ShouldContain("TWO from both");
        (await watching.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_branch" && m.GetProperty("action").GetString() == "update"
            && m.GetProperty("agentId").GetString() == first.Id)).GetProperty("by").GetString().ShouldBe("Sarah");
        await ann.DeleteAsync($"/api/agent/{first.Id}");
        await ann.DeleteAsync($"/api/agent/{second.Id}");
    }

    [Fact]
    public async Task TheServerKilledMidMerge_LeavesTheBranchTheMirrorAndTheRepositoryConsistent_AndMainHoldsTheWorkOnce()
    {
        _source.Commit("v1", new() { ["README.md"] = "v1\n" });
        await using var forge = await GitHttpServer.StartAsync();
        var (url, forgePath) = forge.Serve(_source);
        var node = await ClusterNode.StartAsync("solo", "", AgentChangesTests.Settings());
        await using var _ = node;
        using var http = new HttpClient { BaseAddress = node.Url, Timeout = TimeSpan.FromSeconds(60) };
        var created = await OkAsync<CreateTeamResponse>(await http.PostAsJsonAsync("/api/team/create",
            new CreateTeamRequest("Killed", "Sarah", $"sarah{Guid.NewGuid():N}@example.com", TestServer.Password)), HttpStatusCode.Created);
        http.DefaultRequestHeaders.Authorization = new("Bearer", created.Auth.AccessToken);
        (await http.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var agent = await OkAsync<AgentDto>(await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("Add the work", "shell")), HttpStatusCode.Created);
        await RunAsync(http, agent.Id, "printf 'work\\n' > work.txt");
        var work = (await OkAsync<AgentBranchResponse>(await http.PostAsync($"/api/agent/{agent.Id}/commit", null))).Commit;

        // Main moved on the forge meanwhile (a merge commit is made), and the forge holds the first push to main until told.
        _source.Commit("v2", new() { ["README.md"] = "v2\n" });
        _source.Git("push", "-q", forgePath, "main");
        var marks = Directory.CreateTempSubdirectory("covibe-hook-");
        File.SetUnixFileMode(marks.FullName, (UnixFileMode)0b111_111_111);
        var (held, release, done) = (Path.Combine(marks.FullName, "held"), Path.Combine(marks.FullName, "release"), Path.Combine(marks.FullName, "done"));
        var hook = Path.Combine(forgePath, "hooks", "pre-receive");
        await File.WriteAllTextAsync(hook, $"#!/bin/sh\n[ -e {held} ] && exit 0\ntouch {held}\ni=0\nwhile [ ! -e {release} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\ntouch {done}\nexit 0\n");
        File.SetUnixFileMode(hook, (UnixFileMode)0b111_101_101);

        // Killed (-9) while the forge holds the merge's push.
        var merging = http.PostAsync($"/api/agent/{agent.Id}/merge", null);
        await Eventually.UntilAsync(() => Task.FromResult(File.Exists(held)), "the merge reaches the forge", TimeSpan.FromSeconds(30));
        await node.KillAsync();
        await Should.ThrowAsync<HttpRequestException>(merging);
        await File.WriteAllTextAsync(release, "");
        await node.StartAsync();

        // The mirror is whole and the branch where it was; merging again completes it, or finds it done: main holds the work once.
        var mirror = Path.Combine(node.DataDirectory, "repositories", created.Auth.Team.Id, "mirror.git");
        _source.Git("--git-dir", mirror, "fsck", "--no-dangling", "--no-progress");
        _source.Git("--git-dir", mirror, "rev-parse", $"refs/heads/{agent.WorkBranch}").Trim().ShouldBe(work);
        using (var again = await http.PostAsync($"/api/agent/{agent.Id}/merge", null))
        {
            (again.StatusCode is HttpStatusCode.OK or HttpStatusCode.Conflict).ShouldBeTrue(await again.Content.ReadAsStringAsync());
            if (again.StatusCode == HttpStatusCode.Conflict)
            {
                await again.ShouldBeProblemAsync(HttpStatusCode.Conflict, "already-merged");
            }
        }
        _source.Git("--git-dir", forgePath, "show", "main:work.txt").ShouldBe("work\n");
        _source.Git("--git-dir", forgePath, "rev-list", "--merges", "main").Trim().Split('\n').Length.ShouldBe(1);
        await http.DeleteAsync($"/api/agent/{agent.Id}");
        marks.Delete(recursive: true);
    }

    /// <summary>Sends a line to a shell agent and waits until it says it ran it.</summary>
    internal static async Task RunAsync(HttpClient client, string agentId, string line)
    {
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await client.OutputAsync(agentId)).Contains("ready"), "the agent ready");
        var before = Count(Encoding.UTF8.GetString(await client.OutputAsync(agentId)));
        (await client.PostAsJsonAsync($"/api/agent/{agentId}/input", new AgentInputRequest(line + "\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await Eventually.UntilAsync(async () => Count(Encoding.UTF8.GetString(await client.OutputAsync(agentId))) > before, $"the agent ran {line}");

        static int Count(string output) => output.Split("ran: ").Length;
    }

    internal static async Task<T> OkAsync<T>(HttpResponseMessage reply, HttpStatusCode status = HttpStatusCode.OK)
    {
        using (reply)
        {
            reply.StatusCode.ShouldBe(status, await reply.Content.ReadAsStringAsync());
            return (await reply.Content.ReadFromJsonAsync<T>())!;
        }
    }

    private string ForgeHead(string forgePath) => _source.Git("--git-dir", forgePath, "rev-parse", "refs/heads/main").Trim();

    private static string Mirror(TestServer server, CreateTeamResponse owner) => Path.Combine(server.DataDirectory, "repositories", owner.Auth.Team.Id, "mirror.git");

    private string MirrorRef(TestServer server, CreateTeamResponse owner, string branch) =>
        _source.Git("--git-dir", Mirror(server, owner), "rev-parse", $"refs/heads/{branch}").Trim();

    public void Dispose() => _source.Dispose();
}
