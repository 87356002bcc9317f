using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Features.Git;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Commit and push (issue 25, point 4, first part): the owner commits an agent's work as it is in its tree (the owner the
/// author, the agent a co-author) and pushes its branch to a real private repository with the team's token; a teammate
/// cannot; a push the forge refuses is said plainly and the branch is kept.
/// </summary>
public sealed class AgentBranchTests : IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    [Fact]
    public async Task TheOwnerCommitsAndPushes_TheTeamHearsWho_ATeammateCannot_AndARefusedPushKeepsTheBranch()
    {
        var baseCommit = _source.Commit("base", new() { ["README.md"] = "base\n" });
        await using var server = await TestServer.StartAsync(settings: AgentChangesTests.Settings());
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        using var miguel = server.Client(member.AccessToken);
        var forge = await GitHttpServer.StartAsync();
        await using var _ = forge;
        var (url, forgePath) = forge.Serve(_source);
        (await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await using var watching = await server.ConnectAsync(member.AccessToken);
        await watching.ReceiveAsync("team_joined");

        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "add the feature", "shell");
        await Eventually.UntilAsync(async () => Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).Contains("ready"), "the agent ready");
        (await ann.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("printf 'feature\\n' > feature.txt\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await watching.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_changes" && m.GetProperty("files").GetArrayLength() == 1, TimeSpan.FromSeconds(20), "the file listed");

        // Nothing pushed before a commit; a teammate neither commits nor pushes.
        await (await ann.PostAsync($"/api/agent/{agent.Id}/push", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "nothing-to-push");
        await (await miguel.PostAsJsonAsync($"/api/agent/{agent.Id}/commit", new AgentCommitRequest("mine"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await miguel.PostAsync($"/api/agent/{agent.Id}/push", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");

        var first = await OkAsync(await ann.PostAsJsonAsync($"/api/agent/{agent.Id}/commit", new AgentCommitRequest("Add the feature")));
        first!.WorkBranch.ShouldBe(agent.WorkBranch);
        var heard = await watching.ReceiveAsync("agent_branch");
        (heard.GetProperty("action").GetString(), heard.GetProperty("by").GetString(), heard.GetProperty("commit").GetString()).ShouldBe(("commit", "Sarah", first.Commit));
        var mirror = Path.Combine(server.DataDirectory, "repositories", owner.Auth.Team.Id, "mirror.git");
        var made = _source.Git("--git-dir", mirror, "log", "-1", "--format=%an <%ae>%n%P%n%B", first.Commit).Split('\n');
        made[0].ShouldBe($"Sarah <{owner.Auth.User.Email}>");
        made[1].ShouldBe(baseCommit);
        string.Join('\n', made).ShouldContain($"Add the feature\n\nCo-authored-by: Covibe agent (shell) <agent-{agent.Id[..8]}@covibe.invalid>");
        _source.Git("--git-dir", mirror, "show", $"{first.Commit}:feature.txt").ShouldBe("feature\n");
        // The same tree again: nothing to commit.
        await (await ann.PostAsync($"/api/agent/{agent.Id}/commit", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "nothing-to-commit");

        // Pushed with the team's token: the forge has the branch at that commit.
        var pushed = await OkAsync(await ann.PostAsync($"/api/agent/{agent.Id}/push", null));
        (pushed!.Commit, pushed.PullRequestUrl).ShouldBe((first.Commit, null));
        _source.Git("ls-remote", forgePath, $"refs/heads/{agent.WorkBranch}").ShouldStartWith(first.Commit);
        (await watching.ReceiveAsync("agent_branch")).GetProperty("action").GetString().ShouldBe("push");

        // The forge declines the next push (a protected branch): said plainly; the new commit stays on the branch here.
        var hook = Path.Combine(forgePath, "hooks", "pre-receive");
        await File.WriteAllTextAsync(hook, "#!/bin/sh\necho 'protected branch: pushes are not allowed' >&2\nexit 1\n");
        File.SetUnixFileMode(hook, (UnixFileMode)0b111_101_101);
        (await ann.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("printf 'more\\n' >> feature.txt\n"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await watching.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_changes" && m.GetProperty("added").GetInt32() == 2, TimeSpan.FromSeconds(20), "the second line");
        var second = await OkAsync(await ann.PostAsync($"/api/agent/{agent.Id}/commit", null));
        second!.Message.ShouldStartWith("add the feature");
        _source.Git("--git-dir", mirror, "rev-parse", second.Commit + "^").Trim().ShouldBe(first.Commit);
        var refused = await (await ann.PostAsync($"/api/agent/{agent.Id}/push", null)).ShouldBeProblemAsync(HttpStatusCode.UnprocessableEntity, "push-refused");
        refused.GetProperty("detail").GetString()!.ShouldContain("does not take pushes to this branch");
        refused.GetProperty("detail").GetString()!.ShouldNotContain(forge.Token);
        _source.Git("--git-dir", mirror, "rev-parse", $"refs/heads/{agent.WorkBranch}").Trim().ShouldBe(second.Commit);
        _source.Git("ls-remote", forgePath, $"refs/heads/{agent.WorkBranch}").ShouldStartWith(first.Commit);
        await ann.DeleteAsync($"/api/agent/{agent.Id}");
    }

    private static async Task<AgentBranchResponse> OkAsync(HttpResponseMessage reply)
    {
        using (reply)
        {
            reply.StatusCode.ShouldBe(HttpStatusCode.OK, await reply.Content.ReadAsStringAsync());
            return (await reply.Content.ReadFromJsonAsync<AgentBranchResponse>())!;
        }
    }

    [Theory]
    [InlineData("https://github.com/acme/app.git", "https://github.com/acme/app/compare/main...covibe%2Fab12cd34-x?expand=1")]
    [InlineData("git@github.com:acme/app.git", "https://github.com/acme/app/compare/main...covibe%2Fab12cd34-x?expand=1")]
    [InlineData("https://gitlab.com/group/sub/app.git", "https://gitlab.com/group/sub/app/-/merge_requests/new?merge_request%5Bsource_branch%5D=covibe%2Fab12cd34-x&merge_request%5Btarget_branch%5D=main")]
    [InlineData("https://git.example.com/acme/app.git", null)]
    public void PullRequestLinks_ForGitHubAndGitLab(string repository, string? link) =>
        ForgeLinks.PullRequest(repository, "main", "covibe/ab12cd34-x").ShouldBe(link);

    public void Dispose() => _source.Dispose();
}
