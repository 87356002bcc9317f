using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// An agent on an SSH VM works on the team's repository (issue 25, points 2 to 4): its work tree is a clone made there from a
/// bundle the server copies (the VM never gets the team's credential), its changes are read there and reach a teammate
/// live, and its work is committed, merged into main and, once it ends, discarded from the VM.
/// </summary>
public sealed class VmTreeTests(SshServer ssh) : IClassFixture<SshServer>, IDisposable
{
    private readonly GitRepo _source = GitRepo.Create();

    [Theory]
    [InlineData("ssh")]
    [InlineData("runner")]
    public async Task AnAgentOnAVm_GetsAWorkTreeThere_ItsChangesReadThere_CommittedAndMerged_WithoutTheTeamsToken(string how)
    {
        _source.Commit("base", new() { ["README.md"] = "base\n" });
        await using var server = await TestServer.StartAsync(settings: AgentChangesTests.Settings());
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        await using var forge = await GitHttpServer.StartAsync();
        var (url, forgePath) = forge.Serve(_source);
        (await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await using var machine = RunnerMachine.Create(ssh);
        VmDto vm;
        if (how == "ssh")
        {
            vm = await AgentMergeTests.OkAsync<VmDto>(await ann.PostAsJsonAsync("/api/vm/register",
                new RegisterVmRequest("Sarah's VM", "127.0.0.1", ssh.Port, ssh.User, PrivateKey: ssh.ClientPrivateKey, HostKeyFingerprint: ssh.HostKeyFingerprint)), HttpStatusCode.Created);
        }
        else
        {
            vm = await RunnerTests.AddRunnerVmAsync(ann, type: "tunnel");
            machine.Start(["--server", server.Url.ToString(), "--token", vm.RegistrationToken!, "--transport", "websocket"]);
            await RunnerTests.OnlineAsync(ann, vm.Id);
        }
        await using var watching = await server.ConnectAsync(member.AccessToken);
        await watching.ReceiveAsync("team_joined");

        var agent = await AgentMergeTests.OkAsync<AgentDto>(await ann.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("Say hello from the VM", "shell", VmId: vm.Id)),
            HttpStatusCode.Created);
        agent.WorkBranch.ShouldNotBeNull();
        var started = await Eventually.UntilAsync(() => server.GetAgentAsync(owner.Auth.AccessToken, agent.Id), a => a.Status != AgentStatuses.Starting, "the agent starts");
        started.Status.ShouldBe(AgentStatuses.Running, $"{started.Error} {Encoding.UTF8.GetString(await ann.OutputAsync(agent.Id))}");
        await AgentMergeTests.RunAsync(ann, agent.Id, "printf 'from the vm\\n' > vm.txt; git rev-parse --abbrev-ref HEAD; pwd");
        var output = Encoding.UTF8.GetString(await ann.OutputAsync(agent.Id));
        output.ShouldContain(agent.WorkBranch);
        var tree = output.Split('\n').Select(l => l.Trim()).Single(l => l.EndsWith($"/project/{agent.Id}", StringComparison.Ordinal) || l.EndsWith(agent.Id, StringComparison.Ordinal) && l.StartsWith('/'));

        // Read on the VM, told to a teammate.
        await watching.ReceiveAsync(m => m.GetProperty("type").GetString() == "agent_changes" && m.GetProperty("agentId").GetString() == agent.Id
            && m.GetProperty("files").EnumerateArray().Any(f => f.GetProperty("path").GetString() == "vm.txt"), TimeSpan.FromSeconds(20), "vm.txt listed");
        (await ann.GetStringAsync($"/api/agent/{agent.Id}/changes/diff?path=vm.txt")).ShouldContain("+from the vm");

        // Its tree has no credential of the team's (no remote at all), and nothing on the VM holds the token.
        Git(tree, "remote").Trim().ShouldBeEmpty();
        await DiskScan.ShouldNotHoldAsync(tree, forge.Token);

        // Committed here from the VM's tree, merged into main with the team's token.
        var committed = await AgentMergeTests.OkAsync<AgentBranchResponse>(await ann.PostAsJsonAsync($"/api/agent/{agent.Id}/commit", new AgentCommitRequest("Hello from the VM")));
        var merged = await AgentMergeTests.OkAsync<AgentMergeResponse>(await ann.PostAsync($"/api/agent/{agent.Id}/merge", null));
        merged.Commit.ShouldBe(committed.Commit);
        _source.Git("--git-dir", forgePath, "show", "main:vm.txt").ShouldBe("from the vm\n");
        // Main moves on (a teammate's change to the same file): updated from main, the conflict lands marked in the VM's tree;
        // resolved there and committed, it merges.
        _source.Git("pull", "-q", "--ff-only", forgePath, "main");
        _source.Commit("elsewhere", new() { ["vm.txt"] = "from elsewhere\n" });
        _source.Git("push", "-q", forgePath, "main");
        (await ann.PostAsJsonAsync($"/api/agent/{agent.Id}/input", new AgentInputRequest("printf 'from the vm, again\\n' > vm.txt\n"))).EnsureSuccessStatusCode();
        await Eventually.UntilAsync(async () => (await ann.GetStringAsync($"/api/agent/{agent.Id}/changes/diff?path=vm.txt")).Contains("again"), "the second write read");
        await AgentMergeTests.OkAsync<AgentBranchResponse>(await ann.PostAsync($"/api/agent/{agent.Id}/commit", null));
        await (await ann.PostAsync($"/api/agent/{agent.Id}/merge", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "merge-conflict");
        var update = await AgentMergeTests.OkAsync<AgentUpdateResponse>(await ann.PostAsync($"/api/agent/{agent.Id}/update", null));
        update.Conflicts.ShouldBe(["vm.txt"]);
        File.ReadAllText(Path.Combine(tree, "vm.txt")).ShouldContain("<<<<<<< ");
        await AgentMergeTests.RunAsync(ann, agent.Id, "printf 'from both\\n' > vm.txt");
        await AgentMergeTests.OkAsync<AgentBranchResponse>(await ann.PostAsync($"/api/agent/{agent.Id}/commit", null));
        (await AgentMergeTests.OkAsync<AgentMergeResponse>(await ann.PostAsync($"/api/agent/{agent.Id}/merge", null))).FastForward.ShouldBeTrue();
        _source.Git("--git-dir", forgePath, "show", "main:vm.txt").ShouldBe("from both\n");

        // Once it ended, discarding it removes its tree from the VM.
        (await ann.DeleteAsync($"/api/agent/{agent.Id}")).EnsureSuccessStatusCode();
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        (await ann.PostAsync($"/api/agent/{agent.Id}/discard", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        Directory.Exists(tree).ShouldBeFalse();
    }

    private static string Git(string directory, params string[] args)
    {
        var info = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["-c", $"safe.directory={directory}", "-C", directory, .. args])
        {
            info.ArgumentList.Add(arg);
        }
        using var git = Process.Start(info)!;
        var output = git.StandardOutput.ReadToEnd();
        git.WaitForExit();
        return output;
    }

    public void Dispose() => _source.Dispose();
}
