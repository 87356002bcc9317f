using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>A member's side of boxes and pools over REST, as the CLI and the web client use them.</summary>
public sealed class BoxClient(TestServer server, string accessToken) : IDisposable
{
    public HttpClient Api { get; } = server.Client(accessToken);

    /// <summary>Settings for a server whose boxes run in the given Podman and may clone repositories from this disk.</summary>
    public static Dictionary<string, string> Settings(PodmanService? podman, Dictionary<string, string>? extra = null)
    {
        var settings = AgentHelpers.Settings();
        foreach (var (key, value) in new Dictionary<string, string>
        {
            ["Covibe:Containers:Host"] = podman?.DockerHost ?? "unix:///nonexistent/podman.sock",
            ["Covibe:Containers:Image"] = PodmanService.Image,
            ["Covibe:Boxes:AllowLocalRepositories"] = "true",
            ["Covibe:Boxes:ReconcileSeconds"] = "1",
            ["Covibe:Boxes:BackoffSeconds"] = "1",
        })
        {
            settings[key] = value;
        }
        // What an agent in a box sees: the repository, its user and directory, its branch; and what an earlier agent left.
        AgentHelpers.AddType(settings, "inside", ["sh", "-c",
            "cat README.md; echo uid=$(id -u) at=$(pwd); echo branch=$(git rev-parse --abbrev-ref HEAD) commit=$(git rev-parse HEAD); " +
            "[ -f made.txt ] && cat made.txt; echo made by an agent > made.txt"]);
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }
        return settings;
    }

    public async Task<(HttpStatusCode Status, BoxDto Box)> RequestAsync(GitRepo repo, string branch = "main", string? env = null, string? requestedBy = null, string? vmId = null)
    {
        using var reply = await Api.PostAsJsonAsync("/api/boxes", new BoxRequest(repo.Path, branch, requestedBy, env, VmId: vmId));
        reply.StatusCode.ShouldBeOneOf([HttpStatusCode.OK, HttpStatusCode.Accepted], await reply.Content.ReadAsStringAsync());
        return (reply.StatusCode, (await reply.Content.ReadFromJsonAsync<BoxDto>())!);
    }

    public async Task<BoxDto> GetAsync(string id) => (await Api.GetFromJsonAsync<BoxDto>($"/api/boxes/{id}"))!;

    /// <summary>Follows the box until it is no longer provisioning; answers it (ready or failed).</summary>
    public async Task<BoxDto> SettledAsync(string id, TimeSpan? timeout = null) =>
        await Eventually.UntilAsync(() => GetAsync(id), b => b.Status != "provisioning", $"box {id} is provisioned", timeout ?? TimeSpan.FromSeconds(120));

    public async Task<PoolDto[]> SetPoolsAsync(params PoolSpec[] pools)
    {
        using var reply = await Api.PutAsJsonAsync("/api/pools", pools);
        reply.StatusCode.ShouldBe(HttpStatusCode.OK, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<PoolListResponse>())!.Pools;
    }

    public async Task<PoolDto[]> PoolsAsync() => (await Api.GetFromJsonAsync<PoolListResponse>("/api/pools"))!.Pools;

    /// <summary>Waits until the pool has <paramref name="ready"/> boxes waiting.</summary>
    public async Task<PoolDto> PoolReadyAsync(int ready, TimeSpan? timeout = null) =>
        await Eventually.UntilAsync(async () => (await PoolsAsync()).Single(), p => p.Ready >= ready, $"the pool has {ready} ready", timeout ?? TimeSpan.FromSeconds(120));

    public async Task<string> LogAsync(string id) => (await Api.GetFromJsonAsync<BoxLogResponse>($"/api/boxes/{id}/log"))!.Text;

    public void Dispose() => Api.Dispose();
}
