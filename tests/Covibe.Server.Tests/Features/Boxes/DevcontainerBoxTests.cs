using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Boxes from a repository's dev container configuration, through the real Dev Containers CLI driving Podman: what the
/// configuration may not do is dropped, a broken one is a clear failure (and a pool of it backs off, then pauses), and a
/// server restart in the middle of provisioning finishes the box with nothing left over.
/// </summary>
[Collection(PodmanGroup.Name)]
public sealed class DevcontainerBoxTests(PodmanService podman) : IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();
    private readonly string _data = StartupTests.TempDirectory();
    private readonly string _hostMarker = Path.Combine(Path.GetTempPath(), "covibe-devcontainer-host-" + Guid.NewGuid().ToString("N")[..8]);

    private string Config(string postCreate) => $$"""
        // A dev container as repositories write them: comments, trailing commas, and settings a box must not honour.
        {
          "name": "acme",
          "image": "{{PodmanService.Image}}",
          "remoteUser": "covibe",
          "containerEnv": { "FROM_DEVCONTAINER": "yes" },
          "runArgs": ["--privileged", "-v", "/:/host"],
          "mounts": ["source=/,target=/host2,type=bind"],
          "initializeCommand": "touch {{_hostMarker}}",
          "postCreateCommand": "{{postCreate}}",
        }
        """;

    [Fact]
    public async Task ARepositorysDevcontainer_IsBuiltByDevcontainerUp_WithinTheBoxsWalls_AndItsLifecycleCommandsSeeTheRepository()
    {
        var commit = _repo.Commit("devcontainer", new()
        {
            ["README.md"] = "hello\n",
            [".devcontainer/devcontainer.json"] = Config("cat README.md > created.txt && echo postCreate ran >> created.txt"),
        });
        var settings = BoxClient.Settings(podman);
        AgentHelpers.AddType(settings, "look", ["sh", "-c", "cat created.txt; echo env=$FROM_DEVCONTAINER uid=$(id -u); ls /host /host2 2>&1 | head -1"]);
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);

        var (_, requested) = await sarah.RequestAsync(_repo);
        var box = await sarah.SettledAsync(requested.Id, TimeSpan.FromSeconds(180));
        var log = await sarah.LogAsync(box.Id);
        box.Status.ShouldBe("ready", log);
        box.Devcontainer.ShouldBeTrue();
        box.Commit.ShouldBe(commit);
        log.ShouldContain("ignored \"runArgs\"");
        log.ShouldContain("ignored \"initializeCommand\"");
        File.Exists(_hostMarker).ShouldBeFalse("initializeCommand runs on the host: never on the server");

        var inspect = await podman.Client.Containers.InspectContainerAsync($"covibes_box_{owner.Auth.Team.Id}_{box.Id}");
        inspect.HostConfig!.Privileged.ShouldBeFalse();
        inspect.HostConfig.Memory.ShouldBe(2L * 1024 * 1024 * 1024, "the operator's limits, whatever the repository asks");
        inspect.HostConfig.CapDrop.ShouldContain("SETUID");
        inspect.Mounts.ShouldNotContain(m => m.Source == "/", "no mount of the host's root");
        inspect.Config!.Labels!["covibe.box"].ShouldBe(box.Id);
        inspect.NetworkSettings!.Networks.Keys.ShouldBe([Covibe.Execution.Containers.TeamNetworks.NetworkName(owner.Auth.Team.Id)], "the team's own network, as the devcontainer CLI was told");

        using var client = server.Client(owner.Auth.AccessToken);
        var spawned = await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("look", "look", BoxId: box.Id));
        var agent = (await spawned.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Agent;
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        output.ShouldContain("hello\npostCreate ran", customMessage: output);
        output.ShouldContain("env=yes uid=10001");
        output.ShouldContain("No such file or directory");
    }

    [Fact]
    public async Task ABrokenDevcontainer_FailsClearly_AndAPoolOfIt_BacksOffThenPauses_WithTheReason()
    {
        _repo.Commit("broken", new() { [".devcontainer/devcontainer.json"] = "{ \"image\": \"covibe-no-such-image:1\" }" });
        var settings = BoxClient.Settings(podman, new() { ["Covibe:Boxes:PauseAfterFailures"] = "2" });
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);

        var (_, requested) = await sarah.RequestAsync(_repo);
        var failed = await sarah.SettledAsync(requested.Id, TimeSpan.FromSeconds(120));
        failed.Status.ShouldBe("failed");
        failed.Error.ShouldNotBeNull().ShouldContain("devcontainer up failed");
        (await sarah.LogAsync(failed.Id)).ShouldContain("covibe-no-such-image");

        await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", 1, 2));
        var paused = await Eventually.UntilAsync(async () => (await sarah.PoolsAsync()).Single(), p => p.Paused, "the pool pauses", TimeSpan.FromSeconds(120));
        paused.PausedReason.ShouldNotBeNull().ShouldContain("devcontainer up failed");
        paused.Failed.ShouldBe(2);
        // No retry storm: a paused pool makes nothing more.
        await Task.Delay(TimeSpan.FromSeconds(4));
        var later = (await sarah.PoolsAsync()).Single();
        (later.Failed, later.Provisioning, later.Ready).ShouldBe((2, 0, 0));
        // A change of the pool (or a push to its branch) tries again.
        await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", 1, 3));
        (await sarah.PoolsAsync()).Single().Paused.ShouldBeFalse();
    }

    [Fact]
    public async Task AServerRestart_InTheMiddleOfProvisioning_FinishesTheBox_AndLeavesNothingOrphaned()
    {
        _repo.Commit("slow", new()
        {
            ["README.md"] = "hello\n",
            [".devcontainer/devcontainer.json"] = Config("sleep 8 && echo finished > slow.txt"),
        });
        var settings = BoxClient.Settings(podman);
        string boxId, token;
        await using (var first = await TestServer.StartAsync(settings: settings, dataDirectory: _data))
        {
            var owner = await first.CreateTeamAsync();
            token = owner.Auth.AccessToken;
            using var sarah = new BoxClient(first, token);
            var (_, requested) = await sarah.RequestAsync(_repo);
            boxId = requested.Id;
            // Stopped while the lifecycle commands run.
            await Eventually.UntilAsync(() => sarah.LogAsync(boxId), l => l.Contains("lifecycle commands", StringComparison.Ordinal), "the box is in its lifecycle commands",
                TimeSpan.FromSeconds(120));
        }
        await using var second = await TestServer.StartAsync(settings: settings, dataDirectory: _data);
        using var again = new BoxClient(second, token);
        var box = await again.SettledAsync(boxId, TimeSpan.FromSeconds(180));
        var log = await again.LogAsync(boxId);
        box.Status.ShouldBe("ready", log);
        log.ShouldContain("Picked up again after an interruption");
        var containers = await podman.ListAsync();
        containers.Count(c => c.Labels.TryGetValue("covibe.box", out var id) && id == boxId).ShouldBe(1, "one container for the box, none orphaned");
        using var client = second.Client(token);
        var spawned = await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("look", "inside", BoxId: boxId));
        var agent = (await spawned.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Agent;
        await second.WaitFinishedAsync(token, agent.Id);
        Encoding.UTF8.GetString(await second.OutputAsync(token, agent.Id)).ShouldContain("hello");
        (await client.DeleteAsync($"/api/boxes/{boxId}")).EnsureSuccessStatusCode();
    }

    public void Dispose()
    {
        _repo.Dispose();
        File.Delete(_hostMarker);
        StartupTests.Delete(_data);
    }
}
