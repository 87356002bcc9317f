using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Agents on the team's repository (issue 25, point 2): each on a branch of its own, in a work tree of its own that
/// borrows the team's mirror on this machine, from the base branch's newest commit; never with the push credential.
/// </summary>
public sealed class AgentTreeTests : IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    // Each agent: where it is, what it sees, and whether it can push or change the team's mirror.
    internal const string Probe =
        "git status --short --branch; cat README.md; printf '%s\\n' \"$1\" > work.txt; git add -A; git commit -qm \"$1\"; git log --oneline -1; " +
        "git push -q origin HEAD 2>/dev/null && echo PUSHED || echo PUSH-REFUSED; " +
        "(echo hacked >> \"$(git config remote.origin.url)/config\") 2>/dev/null && echo MIRROR-WRITTEN || echo MIRROR-READ-ONLY; env";

    internal static Dictionary<string, string> Settings(Dictionary<string, string>? settings = null)
    {
        settings ??= AgentHelpers.Settings();
        AgentHelpers.AddType(settings, "probe", ["sh", "-c", Probe, "probe", "{task}"]);
        return settings;
    }

    [Fact]
    public async Task TwoAgents_EachOnItsOwnBranchAndTree_FromTheBasesNewestCommit_WithoutThePushCredential()
    {
        _source.Commit("base", new() { ["README.md"] = "the base" });
        await using var forge = await GitHttpServer.StartAsync();
        var (url, forgePath) = forge.Serve(_source);
        await using var server = await TestServer.StartAsync(settings: Settings());
        var owner = await server.CreateTeamAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        (await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);
        // The base moves after connecting: each agent starts from its newest commit.
        var newest = _source.Commit("newer base", new() { ["README.md"] = "the newest base" });
        _source.Git("push", "-q", forgePath, "main");

        var one = await server.SpawnAsync(owner.Auth.AccessToken, "from-one", "probe");
        var two = await server.SpawnAsync(owner.Auth.AccessToken, "from-two", "probe");
        foreach (var agent in new[] { one, two })
        {
            agent.WorkBranch.ShouldBe(AgentBranches.BranchName(agent.Id, agent.Task));
            agent.WorkBranch.ShouldStartWith($"covibe/{agent.Id[..8]}-from-");
            (agent.RepositoryUrl, agent.Branch, agent.BaseCommit).ShouldBe((url, "main", newest));
        }
        foreach (var agent in new[] { one, two })
        {
            var finished = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
            var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
            finished.Status.ShouldBe("completed", output + finished.Error);
            output.ShouldContain($"## {agent.WorkBranch}");
            output.ShouldContain("the newest base");
            output.ShouldContain("PUSH-REFUSED");
            output.ShouldContain("MIRROR-READ-ONLY");
            output.ShouldNotContain(forge.Token);
            // Its own files, untouched by the other.
            var tree = Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id, agent.Id);
            (await File.ReadAllTextAsync(Path.Combine(tree, "work.txt"))).Trim().ShouldBe(agent.Task);
            // Objects borrowed, not copied: the clone holds only what the agent made.
            (await File.ReadAllTextAsync(Path.Combine(tree, ".git", "objects", "info", "alternates"))).ShouldContain(Path.Combine("repositories", owner.Auth.Team.Id, "mirror.git"));
        }
        // Nothing reached the forge, and the token is nowhere the agents could read (their workspace, the mirror).
        _source.Git("ls-remote", "--heads", forgePath).Trim().Split('\n').ShouldHaveSingleItem().ShouldEndWith("refs/heads/main");
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, forge.Token);
    }

    [Fact]
    public async Task ABaseBranchCanBePicked_AndWhatCannotBeIsRefusedClearly()
    {
        _source.Commit("base", new() { ["README.md"] = "main" });
        _source.Git("checkout", "-q", "-b", "release");
        var release = _source.Commit("release", new() { ["README.md"] = "release" });
        _source.Git("checkout", "-q", "main");
        await using var forge = await GitHttpServer.StartAsync();
        var (url, _) = forge.Serve(_source);
        await using var server = await TestServer.StartAsync(settings: Settings());
        var owner = await server.CreateTeamAsync();
        using var ann = server.Client(owner.Auth.AccessToken);

        // Asked for before the team has a repository: refused, nothing started.
        using (var none = await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "probe", TeamRepository: true)))
        {
            (await ProblemAssertions.ShouldBeValidationProblemAsync(none, "teamRepository")).ShouldContain("no repository yet");
        }
        (await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);

        using (var picked = await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("on release", "probe", BaseBranch: "release")))
        {
            picked.StatusCode.ShouldBe(HttpStatusCode.Created, await picked.Content.ReadAsStringAsync());
            var agent = (await picked.Content.ReadFromJsonAsync<AgentDto>())!;
            (agent.Branch, agent.BaseCommit).ShouldBe(("release", release));
            var finished = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
            var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
            finished.Status.ShouldBe("completed", output + finished.Error);
            output.ShouldContain("release");
        }
        using (var missing = await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "probe", BaseBranch: "no-such-branch")))
        {
            (await missing.ShouldBeProblemAsync(HttpStatusCode.BadGateway, "repository-unreachable")).GetProperty("detail").GetString()!.ShouldContain("no-such-branch");
        }
        using (var injected = await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "probe", BaseBranch: "--upload-pack=touch /tmp/x")))
        {
            await ProblemAssertions.ShouldBeValidationProblemAsync(injected, "baseBranch");
        }
        using (var both = await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "probe", RepositoryUrl: url, BaseBranch: "main")))
        {
            await ProblemAssertions.ShouldBeValidationProblemAsync(both, "teamRepository");
        }
        // Opting out: an empty directory, as before.
        using (var plain = await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "probe", TeamRepository: false)))
        {
            (await plain.Content.ReadFromJsonAsync<AgentDto>())!.WorkBranch.ShouldBeNull();
        }
        (await ann.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.ShouldNotContain(a => a.Status == "failed");
    }

    [Fact]
    public async Task AfterItEnds_TheOwnerDiscardsItsWork_TheLimitHolds_AndTheTeamOwnerSeesTheDisk()
    {
        _source.Commit("base", new() { ["README.md"] = "base" });
        await using var forge = await GitHttpServer.StartAsync();
        var (url, _) = forge.Serve(_source);
        var settings = Settings();
        settings["Covibe:Repositories:MaxWorktreesPerTeam"] = "1";
        AgentHelpers.AddType(settings, "sleepy", ["sh", "-c", "echo 'its work' > work.txt; sleep 600"]);
        await using var server = await TestServer.StartAsync(settings: settings);
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        using var miguel = server.Client(member.AccessToken);
        (await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);

        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "keep me", "sleepy");
        var tree = Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id, agent.Id);
        await Eventually.UntilAsync(() => Task.FromResult(File.Exists(Path.Combine(tree, "work.txt"))), "its work written");
        // One tree kept is the limit here: the next agent on the repository is refused until it goes.
        using (var second = await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("one more", "sleepy")))
        {
            (await second.ShouldBeProblemAsync(HttpStatusCode.TooManyRequests, "too-many-agents")).GetProperty("detail").GetString()!.ShouldContain("discard some first");
        }
        var disk = (await ann.GetFromJsonAsync<TeamWorktreesResponse>("/api/team/worktrees"))!;
        (disk.Max, disk.Trees.ShouldHaveSingleItem().AgentId).ShouldBe((1, agent.Id));
        disk.MirrorBytes.ShouldBeGreaterThan(0);
        disk.Trees[0].Bytes.ShouldBeGreaterThan(0);
        (await miguel.GetAsync("/api/team/worktrees")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);

        // Not while it runs, not by a teammate.
        await (await ann.PostAsync($"/api/agent/{agent.Id}/discard", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "agent-running");
        await ann.DeleteAsync($"/api/agent/{agent.Id}");
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        await (await miguel.PostAsync($"/api/agent/{agent.Id}/discard", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Directory.Exists(tree).ShouldBeTrue("its tree stays after it ends, until discarded");

        // Its tree swapped for a link to something else: discarding removes the link, never what it points to.
        var elsewhere = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "covibe-elsewhere-" + Guid.NewGuid().ToString("N")[..6])).FullName;
        await File.WriteAllTextAsync(Path.Combine(elsewhere, "keep.txt"), "not the agent's");
        Directory.Move(tree, tree + "-moved");
        File.CreateSymbolicLink(tree, elsewhere);
        using (var discarded = await ann.PostAsync($"/api/agent/{agent.Id}/discard", null))
        {
            discarded.StatusCode.ShouldBe(HttpStatusCode.OK, await discarded.Content.ReadAsStringAsync());
            (await discarded.Content.ReadFromJsonAsync<AgentDto>())!.TreeDiscarded.ShouldBeTrue();
        }
        File.Exists(tree).ShouldBeFalse();
        File.Exists(Path.Combine(elsewhere, "keep.txt")).ShouldBeTrue();
        Directory.Delete(elsewhere, recursive: true);
        _source.Git("--git-dir", Path.Combine(server.DataDirectory, "repositories", owner.Auth.Team.Id, "mirror.git"), "for-each-ref").ShouldNotContain(agent.Id);
        await (await ann.PostAsync($"/api/agent/{agent.Id}/discard", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "tree-discarded");
        await (await miguel.GetAsync($"/api/agent/{agent.Id}/changes")).ShouldBeProblemAsync(HttpStatusCode.Conflict, "tree-discarded");

        // Room again for a new one.
        using (var again = await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("one more", "sleepy")))
        {
            again.StatusCode.ShouldBe(HttpStatusCode.Created, await again.Content.ReadAsStringAsync());
            await ann.DeleteAsync($"/api/agent/{(await again.Content.ReadFromJsonAsync<AgentDto>())!.Id}");
        }
    }

    public void Dispose() => _source.Dispose();
}

/// <summary>An agent on the team's repository in a container of its own: the same work tree, borrowing the mirror mounted read-only.</summary>
[Collection(PodmanGroup.Name)]
public sealed class AgentTreeContainerTests(PodmanService podman) : IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    [Fact]
    public async Task InAContainer_TheAgentWorksOnItsOwnBranch_AndCannotPushOrChangeTheMirror()
    {
        var head = _source.Commit("base", new() { ["README.md"] = "the base" });
        await using var forge = await GitHttpServer.StartAsync();
        var (url, _) = forge.Serve(_source);
        await using var server = await TestServer.StartAsync(settings: AgentTreeTests.Settings(podman.Settings()));
        var owner = await server.CreateTeamAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        (await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);

        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "in-a-container", "probe");
        (agent.RunsOn, agent.BaseCommit).ShouldBe(("container", head));
        var finished = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        finished.Status.ShouldBe("completed", output + finished.Error);
        output.ShouldContain($"## {agent.WorkBranch}");
        output.ShouldContain("the base");
        output.ShouldContain("PUSH-REFUSED");
        output.ShouldContain("MIRROR-READ-ONLY");
        output.ShouldNotContain(forge.Token);
        (await File.ReadAllTextAsync(Path.Combine(server.DataDirectory, "workspaces", owner.Auth.Team.Id, agent.Id, "work.txt"))).Trim().ShouldBe("in-a-container");
    }

    public void Dispose() => _source.Dispose();
}
