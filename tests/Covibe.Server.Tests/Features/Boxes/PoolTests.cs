using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Boxes;
using Covibe.Server.Features.Cluster;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>Seed 002's warm pools, in a real Podman: filled, claimed at once, refilled, bounded, replaced when the branch moves.</summary>
[Collection(PodmanGroup.Name)]
public sealed class PoolTests(PodmanService podman) : IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task APool_KeepsBoxesReady_AClaimIsReadyAtOnce_ThePoolRefills_AndNeverExceedsMaxInstances()
    {
        var first = _repo.Commit("first", new() { ["README.md"] = "v1\n" });
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);

        var pools = await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", MinStandby: 2, MaxInstances: 3));
        pools.Single().HeadCommit.ShouldBe(first);
        var filled = await sarah.PoolReadyAsync(2);
        filled.Provisioning.ShouldBe(0);
        filled.Source.ShouldBe("api");
        // Ready boxes are no node's work any more: their makers' leases went with the ready state.
        var leases = server.App.Services.GetRequiredService<Leases>();
        foreach (var id in await PoolBoxIdsAsync(server))
        {
            (await leases.HolderAsync(BoxProvisioner.LeaseName(id), CancellationToken.None)).ShouldBeNull($"box {id} is ready");
        }

        // A claim takes a ready box: ready in the answer, with how long the server took.
        var (status, box) = await sarah.RequestAsync(_repo, requestedBy: "ticket-7");
        status.ShouldBe(HttpStatusCode.OK);
        box.Status.ShouldBe("ready");
        box.FromPool.ShouldBeTrue();
        box.ClaimMs!.Value.ShouldBeLessThan(1000);
        box.Commit.ShouldBe(first);
        box.Holder!.Name.ShouldBe("Sarah");

        // The pool refills to two ready, with the claimed box counted against maxInstances (3).
        var refilled = await sarah.PoolReadyAsync(2);
        refilled.Claimed.ShouldBe(1);
        refilled.Claims.ShouldBe(1);
        refilled.ClaimP50Ms.ShouldNotBeNull();

        // Two more claims: the pool may not make more than one box beyond them (3 in all), and says what it missed.
        (await sarah.RequestAsync(_repo)).Status.ShouldBe(HttpStatusCode.OK);
        (await sarah.RequestAsync(_repo)).Status.ShouldBe(HttpStatusCode.OK);
        var (missed, provisioning) = await sarah.RequestAsync(_repo);
        missed.ShouldBe(HttpStatusCode.Accepted, "none ready: the box is made for the member instead");
        provisioning.FromPool.ShouldBeFalse();
        await Task.Delay(TimeSpan.FromSeconds(3)); // several reconcile passes
        var full = (await sarah.PoolsAsync()).Single();
        full.Claimed.ShouldBe(3);
        (full.Ready + full.Provisioning).ShouldBe(0, "maxInstances 3 are all claimed");
        full.Misses.ShouldBe(1);
        full.Claims.ShouldBe(3);

        // Released boxes make room: the pool fills up again.
        var mine = (await sarah.Api.GetFromJsonAsync<BoxListResponse>("/api/boxes"))!.Boxes.Where(b => b.PoolId is not null).ToList();
        mine.Count.ShouldBe(3);
        foreach (var b in mine.Take(2))
        {
            (await sarah.Api.DeleteAsync($"/api/boxes/{b.Id}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        }
        await sarah.PoolReadyAsync(2);
    }

    [Fact]
    public async Task WhenTheEngineStops_AClaimWithAnEnvIsRefusedAndTheBoxStaysInThePool_StandbysWait_AndAreMadeOnceItIsBack()
    {
        _repo.Commit("first", new() { ["README.md"] = "v1\n" });
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", MinStandby: 1, MaxInstances: 2));
        await sarah.PoolReadyAsync(1);

        await podman.StopServiceAsync();
        try
        {
            // The .env cannot go in: 503 saying why, and the box is still the pool's, ready for the next claim.
            using var refused = await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(_repo.Path, "main", Env: "API_KEY=k-1\n"));
            (await refused.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable, "container-engine-unavailable"))
                .GetProperty("detail").GetString()!.ShouldContain("does not answer");
            var pool = (await sarah.PoolsAsync()).Single();
            (pool.Ready, pool.Claimed).ShouldBe((1, 0), "the box went back to the pool");
            (await sarah.Api.GetFromJsonAsync<BoxListResponse>("/api/boxes?all=true"))!.Boxes.ShouldBeEmpty("nobody holds it");

            // Without a .env the engine is not needed: the claim is answered from the database.
            var (claimed, box) = await sarah.RequestAsync(_repo);
            claimed.ShouldBe(HttpStatusCode.OK);
            box.Status.ShouldBe("ready");

            // The pool makes a standby to replace it: it waits for the engine, neither failed nor counted against the pool.
            await Eventually.UntilAsync(async () => (await sarah.PoolsAsync()).Single(), p => p.Provisioning == 1, "a standby is queued");
            await Eventually.HoldsAsync(async () => (await sarah.PoolsAsync()).Single(), p => (p.Provisioning, p.Failed, p.Ready) == (1, 0, 0),
                "the standby waits through several provisioning passes", TimeSpan.FromSeconds(5));
        }
        finally
        {
            await podman.RestartServiceAsync();
        }

        // Back: the standby is made, and a claim with a .env gets it, with the .env inside.
        await sarah.PoolReadyAsync(1);
        using var claim = await sarah.Api.PostAsJsonAsync("/api/boxes", new BoxRequest(_repo.Path, "main", Env: "API_KEY=k-2\n"));
        claim.StatusCode.ShouldBe(HttpStatusCode.OK, await claim.Content.ReadAsStringAsync());
        (await claim.Content.ReadFromJsonAsync<BoxDto>())!.HasEnv.ShouldBeTrue();
        (await sarah.PoolsAsync()).Single().Failed.ShouldBe(0);
    }

    [Fact]
    public async Task ManySimultaneousRequests_NeverGetTheSameBox()
    {
        _repo.Commit("first", new() { ["README.md"] = "v1\n" });
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", MinStandby: 4, MaxInstances: 4));
        await sarah.PoolReadyAsync(4);

        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => sarah.RequestAsync(_repo)));
        var claimed = answers.Where(a => a.Status == HttpStatusCode.OK).Select(a => a.Box.Id).ToList();
        claimed.Count.ShouldBe(4, "four were ready");
        claimed.Distinct().Count().ShouldBe(4, "no box went to two requests");
        answers.Where(a => a.Status == HttpStatusCode.Accepted).Select(a => a.Box.Id).Distinct().Count().ShouldBe(8);
        (await sarah.PoolsAsync()).Single().Misses.ShouldBe(8);
    }

    [Fact]
    public async Task WhenTheBaseBranchMoves_ReadyBoxesOfTheOldCommitAreReplaced()
    {
        _repo.Commit("first", new() { ["README.md"] = "v1\n" });
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman, new() { ["Covibe:Boxes:HeadCheckSeconds"] = "1" }));
        var owner = await server.CreateTeamAsync();
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", MinStandby: 1, MaxInstances: 1));
        await sarah.PoolReadyAsync(1);

        var second = _repo.Commit("second", new() { ["README.md"] = "v2\n" });
        await Eventually.UntilAsync(async () => (await sarah.PoolsAsync()).Single(), p => p.HeadCommit == second && p.Ready == 1, "a box of the new commit is ready",
            TimeSpan.FromSeconds(120));
        var (_, box) = await sarah.RequestAsync(_repo);
        box.Commit.ShouldBe(second);
    }

    [Fact]
    public async Task PoolRequests_AreChecked_AndOnlyTheOwnerSetsThem()
    {
        await using var server = await TestServer.StartAsync(settings: BoxClient.Settings(podman));
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        _repo.Commit("first", new() { ["README.md"] = "v1\n" });
        using var sarah = new BoxClient(server, owner.Auth.AccessToken);
        using var miguel = new BoxClient(server, member.AccessToken);

        (await miguel.Api.PutAsJsonAsync("/api/pools", new[] { new PoolSpec(_repo.Path, "main", 1, 2) })).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        await ProblemAssertions.ShouldBeValidationProblemAsync(
            await sarah.Api.PutAsJsonAsync("/api/pools", new[] { new PoolSpec(_repo.Path, "nope", 1, 2) }), "[0].baseBranch");
        await ProblemAssertions.ShouldBeValidationProblemAsync(
            await sarah.Api.PutAsJsonAsync("/api/pools", new[] { new PoolSpec(_repo.Path, "main", 3, 2) }), "[0].minStandby");
        await ProblemAssertions.ShouldBeValidationProblemAsync(
            await sarah.Api.PutAsJsonAsync("/api/pools", new[] { new PoolSpec(_repo.Path, "main", 0, null) }), "[0].maxInstances");
        await ProblemAssertions.ShouldBeValidationProblemAsync(
            await sarah.Api.PutAsJsonAsync("/api/pools", new[] { new PoolSpec("https://user:pw@example.com/x.git", "main", 0, 1) }), "[0].repoUrl");
        (await sarah.PoolsAsync()).ShouldBeEmpty("nothing half-set");
        // Everyone sees the pools.
        await sarah.SetPoolsAsync(new PoolSpec(_repo.Path, "main", 0, 2));
        (await miguel.PoolsAsync()).Single().MaxInstances.ShouldBe(2);
        // An empty list removes them.
        (await sarah.SetPoolsAsync()).ShouldBeEmpty();
    }

    private static async Task<List<string>> PoolBoxIdsAsync(TestServer server)
    {
        await using var db = await server.App.Services.GetRequiredService<IDbContextFactory<CovibeDb>>().CreateDbContextAsync();
        return await db.Boxes.Where(b => b.PoolId != null && b.Status == BoxStatuses.Ready).Select(b => b.Id).ToListAsync();
    }

    public void Dispose() => _repo.Dispose();
}
