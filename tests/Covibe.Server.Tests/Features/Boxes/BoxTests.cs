using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Seed 002's boxes, in a real Podman: requested, provisioned, used by agents and terminals, released.</summary>
[Collection(PodmanGroup.Name)]
public sealed class BoxTests(PodmanService podman) : IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task ARequestedBox_IsProvisionedWithTheRepository_RunsAnAgentAndATerminal_AndIsCleanedUpOnRelease()
    {
        var commit = _repo.Commit("first", new() { ["README.md"] = "hello from the repository\n", ["src/app.js"] = "console.log(1)\n" });
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);

        var (status, requested) = await sarah.RequestAsync(_repo, requestedBy: "ticket-123");
        status.ShouldBe(HttpStatusCode.Accepted, "no pool: the id at once, provisioning after (seed 002's async default)");
        requested.Status.ShouldBe("provisioning");
        requested.RequestedBy.ShouldBe("ticket-123");
        requested.Holder!.Name.ShouldBe("Sarah");
        var box = await sarah.SettledAsync(requested.Id);
        box.Status.ShouldBe("ready", await sarah.LogAsync(box.Id));
        box.Commit.ShouldBe(commit);
        box.Workspace.ShouldBe("/workspace");
        box.Devcontainer.ShouldBeFalse();
        var log = await sarah.LogAsync(box.Id);
        log.ShouldContain("default image");
        log.ShouldContain("Ready");
        // The same log as bytes, by the one contract of reads from a position (as agent output and deploy logs).
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/api/boxes/{box.Id}/log?from=0&wait=5"))
        {
            request.Headers.Accept.ParseAdd("text/plain");
            using var text = await sarah.Api.SendAsync(request);
            (await text.Content.ReadAsStringAsync()).ShouldBe(log);
            text.Headers.GetValues("Covibe-Position").Single().ShouldBe("0");
            text.Headers.GetValues("Covibe-Next").Single().ShouldBe(System.Text.Encoding.UTF8.GetByteCount(log).ToString(System.Globalization.CultureInfo.InvariantCulture));
            text.Headers.GetValues("Covibe-Complete").Single().ShouldBe("true");
        }

        // An agent in the box works on its repository, as the box's user.
        var spawned = await sarah.Api.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("look", "inside", BoxId: box.Id));
        spawned.StatusCode.ShouldBe(HttpStatusCode.Created, await spawned.Content.ReadAsStringAsync());
        var agent = (await spawned.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Agent;
        var done = await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        done.Status.ShouldBe("completed", $"{done.Error} {done.ExitCode} {output}");
        output.ShouldContain("hello from the repository");
        output.ShouldContain("uid=10001 at=/workspace");
        output.ShouldContain($"branch=main commit={commit}");

        // Files persist in the box between agents until it is released.
        var second = await sarah.Api.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("again", "inside", BoxId: box.Id));
        var again = (await second.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Agent;
        var finished = await server.WaitFinishedAsync(owner.Auth.AccessToken, again.Id);
        var secondOutput = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, again.Id));
        finished.Status.ShouldBe("completed", $"{finished.Error} {finished.ExitCode} {secondOutput}");
        secondOutput.ShouldContain("made by an agent");

        // A terminal in the box.
        await using (var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken))
        {
            await terminal.CreateAsync("in-box", new { boxId = box.Id });
            await terminal.InputAsync("in-box", "cat README.md made.txt; echo \"in $(pwd) as $(id -u)\"\n");
            var seen = await terminal.OutputUntilAsync("in-box", "in /workspace as 10001");
            seen.ShouldContain("hello from the repository");
            seen.ShouldContain("made by an agent");
        }

        var name = $"covibes_box_{owner.Auth.Team.Id}_{box.Id}";
        (await podman.Client.Containers.InspectContainerAsync(name)).NetworkSettings!.Networks.Keys
            .ShouldBe([Covibe.Execution.Containers.TeamNetworks.NetworkName(owner.Auth.Team.Id)], "the team's own network");
        (await sarah.Api.DeleteAsync($"/api/boxes/{box.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await sarah.GetAsync(box.Id)).Status.ShouldBe("released");
        await Eventually.UntilAsync(async () => (await podman.ListAsync()).Any(c => c.Names.Contains("/" + name)),
            exists => !exists, "the released box's container is removed");
        await Eventually.UntilAsync(() => Task.FromResult(Directory.Exists(Path.Combine(server.DataDirectory, "boxes", box.Id))), exists => !exists, "its files are removed");
        // Nothing runs in a released box.
        var refused = await sarah.Api.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("late", "inside", BoxId: box.Id));
        refused.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await refused.Content.ReadAsStringAsync()).ShouldContain("released");
    }

    [Fact]
    public async Task ABoxOfTheTeamsPrivateRepository_IsFetchedWithTheTeamsToken_WhichNothingInTheBoxHolds()
    {
        var commit = _repo.Commit("first", new() { ["README.md"] = "hello from the private repository\n" });
        var settings = BoxClient.Settings(podman);
        AgentHelpers.AddType(settings, "credentials", ["sh", "-c", "cat README.md; env; cat .git/config; git config --list --show-origin 2>&1; echo done-looking"]);
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        await using var forge = await GitHttpServer.StartAsync();
        var (url, _) = forge.Serve(_repo);
        (await sarah.Api.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(url, Token: forge.Token))).StatusCode.ShouldBe(HttpStatusCode.OK);

        using var requested = await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(url, "main"));
        requested.StatusCode.ShouldBe(HttpStatusCode.Accepted, await requested.Content.ReadAsStringAsync());
        var box = await sarah.SettledAsync((await requested.Content.ReadFromJsonAsync<BoxDto>())!.Id);
        box.Status.ShouldBe("ready", await sarah.LogAsync(box.Id));
        box.Commit.ShouldBe(commit);

        var spawned = await sarah.Api.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("look for it", "credentials", BoxId: box.Id));
        spawned.StatusCode.ShouldBe(HttpStatusCode.Created, await spawned.Content.ReadAsStringAsync());
        var agent = (await spawned.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Agent;
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        var output = Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id));
        output.ShouldContain("hello from the private repository");
        output.ShouldContain("done-looking");
        output.ShouldNotContain(forge.Token);
        // Nor the header it travels in (base64, so the plain token would not show).
        output.ShouldNotContain("extraheader", Case.Insensitive);
        output.ShouldNotContain("Authorization", Case.Insensitive);
        (await sarah.LogAsync(box.Id)).ShouldNotContain(forge.Token);
        (await sarah.Api.DeleteAsync($"/api/boxes/{box.Id}")).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task WhenTheEngineStops_AnAgentOrATerminalInABoxIsRefusedSayingWhy_NeverA500_AndWorksOnceItIsBack()
    {
        _repo.Commit("first", new() { ["README.md"] = "hello\n" });
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        var (_, requested) = await sarah.RequestAsync(_repo);
        var box = await sarah.SettledAsync(requested.Id);
        box.Status.ShouldBe("ready", await sarah.LogAsync(box.Id));

        await podman.StopServiceAsync();
        try
        {
            // The box's container is the only place for it: 503 with the reason, and no agent left behind.
            var refused = await sarah.Api.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("while away", "mock", BoxId: box.Id));
            (await refused.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable, "container-engine-unavailable"))
                .GetProperty("detail").GetString()!.ShouldContain("does not answer");
            (await sarah.Api.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.ShouldBeEmpty();
            await using var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", owner.Auth.AccessToken);
            await terminal.ReceiveAsync("ready");
            await terminal.SendAsync(new { type = "session", action = "create", id = "in-box", config = new { boxId = box.Id } });
            (await terminal.ErrorAsync("COMMAND_FAILED")).GetProperty("error").GetString()!.ShouldContain("does not answer");
        }
        finally
        {
            await podman.RestartServiceAsync();
        }
        var spawned = await sarah.Api.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("back", "mock", BoxId: box.Id));
        spawned.StatusCode.ShouldBe(HttpStatusCode.Created, await spawned.Content.ReadAsStringAsync());
    }

    public void Dispose() => _repo.Dispose();
}
