using System.Net;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Seed 003's preview containers, on a real Podman serving the Docker Engine API.</summary>
[Collection(PodmanGroup.Name)]
public sealed class PreviewContainerTests(PodmanService podman) : IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task WithUseDockerPreview_ThePreviewRunsInAContainer_UnderSeed003sLimits_AndARepositorysDockerfileIsBuiltAndRun()
    {
        var v1 = _repo.Commit("v1", PreviewTests.Site("in a container"));
        var settings = podman.Settings(new Dictionary<string, string>(PreviewTests.Settings));
        settings["Covibe:Containers:Agents"] = "false";
        settings["Covibe:Containers:Preview"] = "true";
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        var teamId = owner.Auth.Team.Id;
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        var connected = await sarah.ConnectAsync(_repo);
        var live = await sarah.LiveAsync(v1, TimeSpan.FromSeconds(90));
        var (origin, cookie) = await sarah.OpenAsync();
        (await sarah.FetchAsync(origin, "/", cookie)).Body.ShouldContain("in a container");

        var firstLog = await sarah.Api.GetStringAsync($"/api/preview/deploys/{live.Latest!.Id}/log");
        firstLog.ShouldNotContain("instead", customMessage: firstLog);
        var first = await podman.Client.Containers.InspectContainerAsync($"covibes_preview_{teamId}_{live.Latest!.Id}");
        first.Config!.Labels!["covibe.type"].ShouldBe("preview");
        first.NetworkSettings!.Networks.Keys.ShouldBe([Covibe.Execution.Containers.TeamNetworks.NetworkName(teamId)], "the team's own network: its agents may reach it, no other team's");
        first.HostConfig!.Memory.ShouldBe(1024L * 1024 * 1024, "seed 003: preview memoryLimit 1g");
        first.HostConfig!.NanoCPUs.ShouldBe(500_000_000L, "seed 003: preview cpuLimit 0.5");
        // Podman lists the default capabilities it dropped (all of them: none is left to add back).
        first.HostConfig.CapDrop.ShouldContain("SETUID");
        first.HostConfig.CapDrop.ShouldContain("NET_RAW");
        first.HostConfig.SecurityOpt.ShouldContain("no-new-privileges");
        first.HostConfig.PortBindings.Values.SelectMany(b => b).ShouldAllBe(b => b.HostIP == "127.0.0.1", "reachable through the server's proxy only");
        first.Config.User.ShouldBe("10001:10001");

        // The repository brings its own Dockerfile: the engine builds it (its output in the deploy's log) and runs it.
        var v2 = _repo.Commit("own image", new()
        {
            ["index.html"] = null,
            ["Dockerfile"] = $"FROM {PodmanService.Image}\nWORKDIR /app\nCOPY server.js .\nEXPOSE 8080\nCMD [\"node\", \"server.js\"]\n",
            ["server.js"] = "require('http').createServer((q, s) => s.end('<h1>from my image on ' + process.env.PORT + '</h1>')).listen(8080, '0.0.0.0');\n",
        });
        (await sarah.PushAsync(teamId, connected.WebhookSecret, v2)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var second = await sarah.LiveAsync(v2, TimeSpan.FromSeconds(120));
        second.Latest!.ProjectType.ShouldBe("container");
        (await sarah.FetchAsync(origin, "/", cookie)).Body.ShouldContain("from my image on 8080");
        var log = await sarah.Api.GetStringAsync($"/api/preview/deploys/{second.Latest.Id}/log");
        log.ShouldContain("Building the image from Dockerfile");
        log.ShouldContain("COPY server.js");

        // The replaced version's container is stopped and removed once it has drained.
        await Eventually.UntilAsync(async () => !(await podman.ListAsync())
            .Any(c => c.Names.Any(n => n.Contains(live.Latest.Id, StringComparison.Ordinal))), "the first version's container removed", TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task WithTheEngineAway_ThePreviewRunsSandboxed_AndItsLogSaysWhy()
    {
        var v1 = _repo.Commit("v1", PreviewTests.Site("fallback"));
        var settings = podman.Settings(new Dictionary<string, string>(PreviewTests.Settings));
        settings["Covibe:Containers:Agents"] = "false";
        settings["Covibe:Containers:Preview"] = "true";
        settings["Covibe:Containers:Host"] = "unix:///nonexistent/podman.sock";
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        await sarah.ConnectAsync(_repo);
        var live = await sarah.LiveAsync(v1);
        var log = await sarah.Api.GetStringAsync($"/api/preview/deploys/{live.Latest!.Id}/log");
        log.ShouldContain("runs on the server's machine instead, sandboxed");
        var (origin, cookie) = await sarah.OpenAsync();
        (await sarah.FetchAsync(origin, "/", cookie)).Body.ShouldContain("fallback");
    }

    [Fact]
    public async Task WhenTheEngineStopsWhileTheServerRuns_TheNextVersionGoesLiveSandboxed_AndItsLogSaysWhy()
    {
        var v1 = _repo.Commit("v1", PreviewTests.Site("first in a container"));
        var settings = podman.Settings(new Dictionary<string, string>(PreviewTests.Settings));
        settings["Covibe:Containers:Agents"] = "false";
        settings["Covibe:Containers:Preview"] = "true";
        // The engine's answer is trusted for ten minutes: only the deploy's own call can find it gone.
        settings["Covibe:Containers:EngineCheckSeconds"] = "600";
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        var connected = await sarah.ConnectAsync(_repo);
        var live = await sarah.LiveAsync(v1, TimeSpan.FromSeconds(90));
        (await sarah.Api.GetStringAsync($"/api/preview/deploys/{live.Latest!.Id}/log")).ShouldNotContain("instead");

        await podman.StopServiceAsync();
        try
        {
            var v2 = _repo.Commit("v2", PreviewTests.Site("second, sandboxed"));
            (await sarah.PushAsync(owner.Auth.Team.Id, connected.WebhookSecret, v2)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
            var second = await sarah.LiveAsync(v2, TimeSpan.FromSeconds(90));
            var log = await sarah.Api.GetStringAsync($"/api/preview/deploys/{second.Latest!.Id}/log");
            log.ShouldContain("does not answer");
            log.ShouldContain("runs on the server's machine instead, sandboxed");
            var (origin, cookie) = await sarah.OpenAsync();
            (await sarah.FetchAsync(origin, "/", cookie)).Body.ShouldContain("second, sandboxed");
        }
        finally
        {
            await podman.RestartServiceAsync();
        }
    }

    public void Dispose() => _repo.Dispose();
}
