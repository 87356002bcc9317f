using System.Net;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// The team's preview on two nodes: one node deploys at a time (a node starting does not undo the other's build), pushes
/// and cancels reach it from either node, either node's preview origin serves the live version (the new one as soon as
/// it is live), and when the deploying node stops, the other deploys.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed class ClusterPreviewTests(PostgresServer postgres, RedisServer redis) : IClassFixture<PostgresServer>, IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();

    private static Dictionary<string, string?> Site(string text, int buildSeconds = 0) => new()
    {
        ["index.html"] = $"<h1>{text}</h1>",
        ["covibe.preview.json"] = buildSeconds == 0 ? null : $$"""{"build": "echo building {{text}}; sleep {{buildSeconds}}", "static": "."}""",
    };

    [Fact]
    public async Task OneNodeDeploys_EitherNodeServesAndSteers_AndTheOtherTakesOverWhenItStops()
    {
        var database = await postgres.CreateDatabaseAsync();
        var settings = new Dictionary<string, string>(PreviewTests.Settings);
        foreach (var (key, value) in redis.ClusterSettings())
        {
            settings[key] = value;
        }
        var a = await TestServer.StartAsync(postgres: database, settings: settings);
        await using var nodeA = a;
        var owner = await a.CreateTeamAsync();
        var teamId = owner.Auth.Team.Id;
        using var onA = new PreviewClient(a, owner.Auth.AccessToken);
        var v1 = _repo.Commit("v1", Site("v1", buildSeconds: 3));
        var connected = await onA.ConnectAsync(_repo);
        await Eventually.UntilAsync(onA.GetAsync, p => p.Current is { Status: "building" }, "v1 building on node A");

        // Node B starts meanwhile: node A's build goes on (a starting node used to take it for its own, interrupted).
        await using var b = await TestServer.StartAsync(postgres: database, settings: settings);
        using var onB = new PreviewClient(b, owner.Auth.AccessToken);
        await onB.LiveAsync(v1);
        (await onB.DeploysAsync()).ShouldNotContain(d => d.Status == "cancelled", "nothing was interrupted");

        // Node B's preview origin serves it too.
        var (origin, cookie) = await onB.OpenAsync();
        (await onB.FetchAsync(origin, "/", cookie)).Body.ShouldContain("v1");

        // A push through node B is deployed by node A; node B's origin serves the new version as soon as it is live.
        var v2 = _repo.Commit("v2", Site("v2"));
        (await onB.PushAsync(teamId, connected.WebhookSecret, v2)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await onB.LiveAsync(v2);
        (await onB.FetchAsync(origin, "/", cookie)).Body.ShouldContain("v2");

        // A cancel through node B stops the build running on node A.
        var v3 = _repo.Commit("v3", Site("v3", buildSeconds: 60));
        (await onB.PushAsync(teamId, connected.WebhookSecret, v3)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var building = await Eventually.UntilAsync(onB.GetAsync, p => p.Current is { Status: "building", LogBytes: > 0 }, "v3 building");
        (await onB.Api.PostAsync("/api/preview/cancel", null)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await onB.LatestAsync(v3, "cancelled", TimeSpan.FromSeconds(20))).Commit.ShouldBe(v2);
        await Eventually.UntilAsync(() => Task.FromResult(TestServer.ProcessesMentioning("preview-" + building.Current!.Id).Count == 0), "the cancelled build's processes gone");

        // Node A stops: node B deploys from now on.
        await a.DisposeAsync();
        var v4 = _repo.Commit("v4", Site("v4"));
        (await onB.PushAsync(teamId, connected.WebhookSecret, v4)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await onB.LiveAsync(v4, TimeSpan.FromSeconds(60));
        (await onB.FetchAsync(origin, "/", cookie)).Body.ShouldContain("v4");
    }

    public void Dispose() => _repo.Dispose();
}
