using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Seed 002's encrypted <c>.env</c>: sealed at rest for the team and box, decrypted in memory only, written into the
/// box through an exec's stdin, never on the server's disk or in its logs; and the requests that must be refused.
/// </summary>
[Collection(PodmanGroup.Name)]
public sealed class BoxEnvTests(PodmanService podman) : IDisposable
{
    private const string Secret = "sk-live-4f9a8c7e6d5b4a39";
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task TheEnv_ReachesTheBoxAs0600_ButNeverTheServersDiskOrLogs_ForProvisionedAndClaimedBoxes()
    {
        _repo.Commit("first", new() { ["README.md"] = "v1\n", [".gitignore"] = ".env\n" });
        var logs = new LogSink();
        var settings = DotEnvSettings();
        await using var server = await TestServer.StartAsync(settings: settings, logs: logs);
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        var env = $"API_KEY={Secret}\nDEBUG=1\n";

        // Provisioned for the member.
        var (_, requested) = await sarah.RequestAsync(_repo, env: env);
        requested.HasEnv.ShouldBeTrue();
        var box = await sarah.SettledAsync(requested.Id);
        box.Status.ShouldBe("ready", await sarah.LogAsync(box.Id));

        // Claimed from a pool, with the payload the team sealed before (seed 002's envPayload).
        var payload = (await (await sarah.Api.PostAsJsonAsync("/api/boxes/env-payload", new BoxEnvPayloadRequest(env))).Content.ReadFromJsonAsync<BoxEnvPayloadResponse>())!.EnvPayload;
        payload.ShouldNotContain(Secret);
        await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", 1, 2));
        await sarah.PoolReadyAsync(1);
        using var claim = await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(_repo.Path, "main", EnvPayload: payload));
        claim.StatusCode.ShouldBe(HttpStatusCode.OK, await claim.Content.ReadAsStringAsync());
        var claimed = (await claim.Content.ReadFromJsonAsync<BoxDto>())!;
        claimed.HasEnv.ShouldBeTrue();

        // Not in the box's log, the server's log, the database or any file of the server's.
        (await sarah.LogAsync(box.Id)).ShouldNotContain(Secret);
        logs.Lines.ShouldAllBe(line => !line.Contains(Secret));
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, Secret, "API_KEY");
        // In the box's workspace on this machine there is only a link to the box's memory.
        var link = new FileInfo(Path.Combine(server.DataDirectory, "boxes", box.Id, "workspace", ".env"));
        link.LinkTarget.ShouldBe("/run/covibe/.env");

        // In the box, the repository's .env is there, the member's alone (what an agent prints is its output: not checked above).
        (await DotEnvAsync(server, owner.Auth.AccessToken, box.Id)).ShouldBe($"{env}mode=600 owner=10001\n");
        (await DotEnvAsync(server, owner.Auth.AccessToken, claimed.Id)).ShouldContain($"API_KEY={Secret}");
    }

    [Fact]
    public async Task BadRequests_AreRefusedClearly_AndLeaveNothingBehind()
    {
        _repo.Commit("first", new() { ["README.md"] = "v1\n" });
        var logs = new LogSink();
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman, new() { ["Covibe:Boxes:MaxEnvBytes"] = "1024" }), logs: logs);
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        var other = await server.CreateTeamAsync("Globex", "Chen");
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        using var chen = new BoxClient(server, other.Auth.AccessToken);

        async Task<string> Refused(BoxRequest request, string field) =>
            await ProblemAssertions.ShouldBeValidationProblemAsync(await sarah.Api.PostAsJsonAsync("/api/boxes", request), field);
        (await Refused(new BoxRequest("/nowhere/at/all", "main"), "repoUrl")).ShouldContain("could not be read");
        (await Refused(new BoxRequest(_repo.Path, "no-such-branch"), "branch")).ShouldContain("no branch 'no-such-branch'");
        (await Refused(new BoxRequest(_repo.Path, "-x"), "branch")).ShouldContain("not a branch name");
        (await Refused(new BoxRequest("https://user:token@example.com/r.git", "main"), "repoUrl")).ShouldContain("credentials");
        (await Refused(new BoxRequest(_repo.Path, "main", Env: "A=1", EnvPayload: "x"), "env")).ShouldContain("not both");
        // Someone else's payload (another team's) does not open here, and is never echoed.
        var theirs = (await (await chen.Api.PostAsJsonAsync("/api/boxes/env-payload", new BoxEnvPayloadRequest($"K={Secret}"))).Content.ReadFromJsonAsync<BoxEnvPayloadResponse>())!.EnvPayload;
        (await Refused(new BoxRequest(_repo.Path, "main", EnvPayload: theirs), "envPayload")).ShouldNotContain(theirs);
        var large = await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(_repo.Path, "main", Env: $"K={new string('x', 2000)}"));
        (await large.ShouldBeProblemAsync(HttpStatusCode.RequestEntityTooLarge, "env-too-large")).GetProperty("detail").GetString()!.ShouldContain("1024");
        (await sarah.Api.GetFromJsonAsync<BoxListResponse>("/api/boxes?all=true"))!.Boxes.ShouldBeEmpty("nothing half-made");

        // Another team's box, and a teammate's, are not yours to use or release.
        var (_, box) = await sarah.RequestAsync(_repo);
        (await chen.Api.GetAsync($"/api/boxes/{box.Id}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await chen.Api.DeleteAsync($"/api/boxes/{box.Id}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        using var miguel = new BoxClient(server, member.AccessToken);
        (await miguel.GetAsync(box.Id)).Holder!.Name.ShouldBe("Sarah", "the team sees it");
        (await miguel.Api.DeleteAsync($"/api/boxes/{box.Id}")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        await sarah.SettledAsync(box.Id);
        var spawn = await miguel.Api.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("mine now", "inside", BoxId: box.Id));
        (await ProblemAssertions.ShouldBeValidationProblemAsync(spawn, "boxId")).ShouldContain("no box");
        await using var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", other.Auth.AccessToken);
        await terminal.SendAsync(new { type = "session", action = "create", id = "theirs", config = new { boxId = box.Id } });
        (await terminal.ErrorAsync("COMMAND_FAILED")).GetProperty("error").GetString()!.ShouldContain("no box");
        logs.Lines.ShouldAllBe(line => !line.Contains(Secret));
    }

    [Fact]
    public async Task WhenABoxsContainerRestartsWhileTheServerRuns_ItsEnvComesBack_AsTheBoxUsersAlone_AndNeverOnDisk()
    {
        _repo.Commit("first", new() { ["README.md"] = "v1\n", [".gitignore"] = ".env\n" });
        var logs = new LogSink();
        var settings = DotEnvSettings();
        await using var server = await TestServer.StartAsync(settings: settings, logs: logs);
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        var (_, requested) = await sarah.RequestAsync(_repo, env: $"API_KEY={Secret}\n");
        var box = await sarah.SettledAsync(requested.Id);
        box.Status.ShouldBe("ready", await sarah.LogAsync(box.Id));

        // Restarted outside Covibe (an operator, the engine's restart policy): its memory, and the .env in it, are gone.
        var container = $"covibes_box_{owner.Auth.Team.Id}_{box.Id}";
        await podman.Client.Containers.RestartContainerAsync(container, new() { WaitBeforeKillSeconds = 1 });
        await EnvBackAsync(container);
        await Eventually.UntilAsync(() => Task.FromResult(logs.Lines.Any(line => line.Contains("started again: its .env is written into it again"))),
            "the log says the box got its .env back"); // said once the write has returned
        logs.Lines.ShouldAllBe(line => !line.Contains(Secret));
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, Secret, "API_KEY");
        // As the box's user alone (what the agent prints is its output, so after the scan).
        (await DotEnvAsync(server, owner.Auth.AccessToken, box.Id)).ShouldBe($"API_KEY={Secret}\nmode=600 owner=10001\n");
    }

    [Fact]
    public async Task AfterABoxsContainerRestartsWithTheServer_ItRunsAgain_WithItsEnv_AndProvisioningGoesOn()
    {
        _repo.Commit("first", new() { ["README.md"] = "v1\n", [".gitignore"] = ".env\n" });
        var data = StartupTests.TempDirectory();
        var settings = DotEnvSettings();
        string token, boxId, container;
        await using (var first = await TestServer.StartAsync(settings: settings, dataDirectory: data))
        {
            var owner = await first.CreateTeamAsync();
            token = owner.Auth.AccessToken;
            using var sarah = new BoxClient(first, token);
            var (_, requested) = await sarah.RequestAsync(_repo, env: $"API_KEY={Secret}\n");
            boxId = (await sarah.SettledAsync(requested.Id)).Id;
            container = $"covibes_box_{owner.Auth.Team.Id}_{boxId}";
        }
        // The machine restarts: the box's container stops, and its memory (the .env) with it.
        await podman.Client.Containers.StopContainerAsync(container, new() { WaitBeforeKillSeconds = 1 });
        await using (var second = await TestServer.StartAsync(settings: settings, dataDirectory: data))
        {
            await Eventually.UntilAsync(async () => (await podman.Client.Containers.InspectContainerAsync(container)).State!.Running == true, running => running,
                "the box's container runs again");
            // Whatever restoring that box met, the server still makes boxes.
            using var again = new BoxClient(second, token);
            var (_, next) = await again.RequestAsync(_repo);
            (await again.SettledAsync(next.Id)).Status.ShouldBe("ready");
            (await again.GetAsync(boxId)).Status.ShouldBe("ready");
            // With its .env back, the box user's alone.
            await EnvBackAsync(container);
            (await DotEnvAsync(second, token, boxId)).ShouldBe($"API_KEY={Secret}\nmode=600 owner=10001\n");
        }
        // Only once the server has stopped (it releases its leases in the database on the way out).
        StartupTests.Delete(data);
    }

    /// <summary>Boxes in the test's Podman, and an agent type, <c>dotenv</c>, that prints the box's <c>.env</c>, its mode and owner.</summary>
    private Dictionary<string, string> DotEnvSettings()
    {
        var settings = BoxClient.Settings(podman);
        AgentHelpers.AddType(settings, "dotenv", ["sh", "-c", "cat .env; stat -L -c 'mode=%a owner=%u' .env"]);
        return settings;
    }

    /// <summary>Waits until the box's <c>.env</c> is in its memory again, looked at from inside as the box's user.</summary>
    private Task<string> EnvBackAsync(string container) =>
        Eventually.UntilAsync(() => podman.ExecAsync(container, "10001", "cat", "/run/covibe/.env"), env => env.Contains("API_KEY"),
            "the .env is in the box again", TimeSpan.FromSeconds(60));

    private static async Task<string> DotEnvAsync(TestServer server, string token, string boxId)
    {
        using var client = server.Client(token);
        var spawned = await client.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("show the env", "dotenv", BoxId: boxId));
        spawned.StatusCode.ShouldBe(HttpStatusCode.Created, await spawned.Content.ReadAsStringAsync());
        var agent = (await spawned.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Agent;
        await server.WaitFinishedAsync(token, agent.Id);
        return Encoding.UTF8.GetString(await server.OutputAsync(token, agent.Id));
    }

    public void Dispose() => _repo.Dispose();
}
