using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Boxes on VMs over SSH (seed 002's SSH provisioner), against a real sshd: on a member's own VM, and on the operator's
/// VM pool (seed 000's vm-instances.json, its key file loaded into the server's ssh-agent) with a warm pool there.
/// </summary>
public sealed class VmBoxTests(SshServer ssh) : IClassFixture<SshServer>, IDisposable
{
    private const string Secret = "vm-secret-77c1a9";
    private readonly GitRepo _repo = GitRepo.Create();
    private readonly string _dir = StartupTests.TempDirectory();

    private static Dictionary<string, string> Settings(Dictionary<string, string>? extra = null)
    {
        var settings = BoxClient.Settings(null, extra);
        AgentHelpers.AddType(settings, "where", ["sh", "-c", "cat README.md; echo at=$(pwd) home=$HOME; cat .env; stat -c mode=%a .env"]);
        return settings;
    }

    [Fact]
    public async Task ABoxOnTheMembersVm_IsClonedThere_TakesAgentsATerminalAndItsEnv_AndIsRemovedOnRelease()
    {
        _repo.Commit("first", new() { ["README.md"] = "hello from the repository\n" });
        var logs = new LogSink();
        await using var server = await TestServer.StartAsync(settings: Settings(), logs: logs);
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        using var registered = await sarah.Api.PostAsJsonAsync("/api/vm/register",
            new RegisterVmRequest("Sarah's VM", "127.0.0.1", ssh.Port, ssh.User, PrivateKey: ssh.ClientPrivateKey, HostKeyFingerprint: ssh.HostKeyFingerprint));
        registered.StatusCode.ShouldBe(HttpStatusCode.Created, await registered.Content.ReadAsStringAsync());
        var vm = (await registered.Content.ReadFromJsonAsync<VmDto>())!;

        var (status, requested) = await sarah.RequestAsync(_repo, env: $"TOKEN={Secret}\n", vmId: vm.Id);
        status.ShouldBe(HttpStatusCode.Accepted);
        requested.Backend.ShouldBe("vm");
        var box = await sarah.SettledAsync(requested.Id);
        box.Status.ShouldBe("ready", await sarah.LogAsync(box.Id));
        box.Workspace.ShouldBe($"~/covibe-boxes/{box.Id}/repo");
        box.Commit.ShouldBe(_repo.Head());
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, Secret);
        logs.Lines.ShouldAllBe(line => !line.Contains(Secret));

        var output = await RunAsync(server, owner.Auth.AccessToken, box.Id);
        output.ShouldContain("hello from the repository");
        output.ShouldContain($"/covibe-boxes/{box.Id}/repo home=");
        output.ShouldContain($"TOKEN={Secret}\nmode=600");
        var home = output.Split("home=")[1].Split('\n')[0];

        await using (var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken))
        {
            await terminal.CreateAsync("vm-box", new { boxId = box.Id });
            await terminal.InputAsync("vm-box", "cat README.md; echo \"in $(pwd)\"\n");
            (await terminal.OutputUntilAsync("vm-box", $"in {home}/covibe-boxes/{box.Id}/repo")).ShouldContain("hello from the repository");
        }

        (await sarah.Api.DeleteAsync($"/api/boxes/{box.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        await Eventually.UntilAsync(() => Task.FromResult(Directory.Exists($"{home}/covibe-boxes/{box.Id}")), exists => !exists, "the box's directory leaves the VM");

        // Someone else's VM is refused, naming the field.
        (await ProblemAssertions.ShouldBeValidationProblemAsync(
            await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(_repo.Path, "main", VmId: "not-my-vm")), "vmId")).ShouldContain("no VM");
    }

    [Fact]
    public async Task APoolOnTheOperatorsVms_KeepsABoxReady_AndAClaimGetsItAtOnce()
    {
        _repo.Commit("first", new() { ["README.md"] = "hello from the repository\n" });
        Directory.CreateDirectory(_dir);
        var key = Path.Combine(_dir, "pool-key");
        await File.WriteAllTextAsync(key, ssh.ClientPrivateKey);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var instances = Path.Combine(_dir, "vm-instances.json");
        await File.WriteAllTextAsync(instances, $$"""
            { "instances": [ { "id": "vm-pool-1", "host": "127.0.0.1", "port": {{ssh.Port}}, "username": "{{ssh.User}}", "sshKeyPath": "{{key}}",
                               "hostKeyFingerprint": "{{ssh.HostKeyFingerprint}}", "status": "available", "maxUsers": 4 } ] }
            """);
        await using var server = await TestServer.StartAsync(settings: Settings(new() { ["Covibe:Vms:InstancesFile"] = instances }));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);

        await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", 1, 2, Backend: "vm"));
        var pool = await sarah.PoolReadyAsync(1);
        pool.Backend.ShouldBe("vm");
        using var claim = await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(_repo.Path, "main", Env: $"TOKEN={Secret}\n", VmId: "pool"));
        claim.StatusCode.ShouldBe(HttpStatusCode.OK, await claim.Content.ReadAsStringAsync());
        var box = (await claim.Content.ReadFromJsonAsync<BoxDto>())!;
        box.FromPool.ShouldBeTrue();
        var output = await RunAsync(server, owner.Auth.AccessToken, box.Id);
        output.ShouldContain("hello from the repository");
        output.ShouldContain($"TOKEN={Secret}\nmode=600");
        (await sarah.PoolsAsync()).Single().Claims.ShouldBe(1);
        // A container request does not take a VM pool's box (and this server has no container engine).
        (await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(_repo.Path, "main"))).StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
        (await sarah.Api.DeleteAsync($"/api/boxes/{box.Id}")).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task ABoxOfTheTeamsPrivateRepository_OnAVm_IsClonedFromABundleTheServerCopies_TheTokenNeverGoesThere()
    {
        _repo.Commit("first", new() { ["README.md"] = "hello from the private repository\n" });
        await using var server = await TestServer.StartAsync(settings: Settings());
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        await using var forge = await GitHttpServer.StartAsync();
        var (url, _) = forge.Serve(_repo);
        (await sarah.Api.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);
        using var registered = await sarah.Api.PostAsJsonAsync("/api/vm/register",
            new RegisterVmRequest("Sarah's VM", "127.0.0.1", ssh.Port, ssh.User, PrivateKey: ssh.ClientPrivateKey, HostKeyFingerprint: ssh.HostKeyFingerprint));
        var vm = (await registered.Content.ReadFromJsonAsync<VmDto>())!;

        using var requested = await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(url, "main", null, "A=1\n", VmId: vm.Id));
        requested.StatusCode.ShouldBe(HttpStatusCode.Accepted, await requested.Content.ReadAsStringAsync());
        var box = await sarah.SettledAsync((await requested.Content.ReadFromJsonAsync<BoxDto>())!.Id);
        box.Status.ShouldBe("ready", await sarah.LogAsync(box.Id));
        box.Commit.ShouldBe(_repo.Head());

        var output = await RunAsync(server, owner.Auth.AccessToken, box.Id);
        output.ShouldContain("hello from the private repository");
        var home = output.Split("home=")[1].Split('\n')[0];
        var boxDirectory = Path.Combine(home, "covibe-boxes", box.Id);
        await DiskScan.ShouldNotHoldAsync(boxDirectory, forge.Token);
        File.Exists(Path.Combine(boxDirectory, "repo.bundle")).ShouldBeFalse("the bundle is removed once cloned");
        (await sarah.Api.DeleteAsync($"/api/boxes/{box.Id}")).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task AnUnreachablePoolVm_FailsTheBoxClearly()
    {
        _repo.Commit("first", new() { ["README.md"] = "x\n" });
        Directory.CreateDirectory(_dir);
        var instances = Path.Combine(_dir, "vm-instances.json");
        await File.WriteAllTextAsync(instances, $$"""
            { "instances": [ { "id": "vm-gone", "host": "127.0.0.1", "port": {{PostgresServer.FreePort()}}, "username": "nobody", "sshKeyPath": "/nonexistent",
                               "hostKeyFingerprint": "SHA256:AAAA" } ] }
            """);
        await using var server = await TestServer.StartAsync(settings: Settings(new() { ["Covibe:Vms:InstancesFile"] = instances }));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        var (_, requested) = await sarah.RequestAsync(_repo, vmId: "pool");
        var failed = await sarah.SettledAsync(requested.Id);
        failed.Status.ShouldBe("failed");
        failed.Error.ShouldNotBeNull().ShouldContain("could not be reached");
        failed.Error.ShouldContain("vm-gone");
    }

    private static async Task<string> RunAsync(TestServer server, string token, string boxId)
    {
        using var client = server.Client(token);
        var spawned = await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("where am I", "where", BoxId: boxId));
        spawned.StatusCode.ShouldBe(HttpStatusCode.Created, await spawned.Content.ReadAsStringAsync());
        var agent = (await spawned.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Agent;
        var done = await server.WaitFinishedAsync(token, agent.Id);
        var output = Encoding.UTF8.GetString(await server.OutputAsync(token, agent.Id));
        done.Status.ShouldBe("completed", $"{done.Error} {output}");
        return output;
    }

    public void Dispose()
    {
        _repo.Dispose();
        StartupTests.Delete(_dir);
    }
}
