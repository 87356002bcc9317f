using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Warm pools on two nodes of one database: the reconciler runs on one node at a time (a lease), so the pool is never
/// filled twice over; when that node stops, the other keeps the pool full.
/// </summary>
[Collection(PodmanGroup.Name)]
public sealed class ClusterPoolTests(PodmanService podman, PostgresServer postgres) : IClassFixture<PostgresServer>, IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task TwoNodes_FillAPoolAsOne_AndTheOtherKeepsItFullWhenOneStops()
    {
        _repo.Commit("first", new() { ["README.md"] = "v1\n" });
        var database = await postgres.CreateDatabaseAsync();
        var settings = BoxClient.Settings(podman);
        var a = await TestServer.StartAsync(postgres: database, settings: settings);
        await using var nodeA = a;
        await using var b = await TestServer.StartAsync(postgres: database, settings: settings);
        var owner = await a.CreateTeamAsync();
        using var onA = new BoxClient(a, owner.Auth.AccessToken);
        using var onB = new BoxClient(b, owner.Auth.AccessToken);

        await onA.SetPoolsAsync(new PoolSpec(_repo.Path, "main", MinStandby: 2, MaxInstances: 4));
        await onB.PoolReadyAsync(2);
        // A claim on each node at once: each node wakes its reconciler at once. One of them refills (two more); were both
        // to, the pool would pass maxInstances (two claimed, four more).
        var claims = await Task.WhenAll(onA.RequestAsync(_repo), onB.RequestAsync(_repo));
        claims.ShouldAllBe(c => c.Box.FromPool);
        var seen = new List<PoolDto>();
        for (var i = 0; i < 30; i++)
        {
            seen.Add((await onB.PoolsAsync()).Single());
            await Task.Delay(150);
        }
        seen.ShouldAllBe(p => p.Ready + p.Provisioning + p.Claimed <= 4, "maxInstances holds across the nodes");
        await onB.PoolReadyAsync(2);

        // Node A stops (holding the lease or not); node B keeps the pool full.
        await a.DisposeAsync();
        foreach (var (_, box) in claims)
        {
            (await onB.Api.DeleteAsync($"/api/boxes/{box.Id}")).EnsureSuccessStatusCode();
        }
        var (_, third) = await onB.RequestAsync(_repo);
        third.FromPool.ShouldBeTrue();
        await Eventually.UntilAsync(async () => (await onB.PoolsAsync()).Single(), p => p.Claimed == 1 && p.Ready == 2,
            "node B refills the pool after the claim", TimeSpan.FromSeconds(120));
    }

    public void Dispose() => _repo.Dispose();
}
