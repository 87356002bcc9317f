using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// A team whose code may connect nowhere still gets its preview: the server reaches the app (through the sandbox's socket
/// bridge, or the container's port published on this machine's loopback) although the app itself can reach nothing.
/// </summary>
[Collection(PodmanGroup.Name)]
public sealed class EgressPreviewTests(PodmanService podman) : IDisposable
{
    private readonly GitRepo _repo = GitRepo.Create();

    [Fact]
    public async Task ASandboxedPreview_OfATeamWithNoEgress_GoesLiveAndServes() =>
        await LiveUnderNoneAsync(new Dictionary<string, string>(PreviewTests.Settings), "sandboxed, walled");

    [Fact]
    public async Task AContainerPreview_OfATeamWithNoEgress_GoesLiveAndServes()
    {
        var settings = podman.Settings(new Dictionary<string, string>(PreviewTests.Settings));
        settings["Covibe:Containers:Agents"] = "false";
        settings["Covibe:Containers:Preview"] = "true";
        await LiveUnderNoneAsync(settings, "in a container, walled");
    }

    private async Task LiveUnderNoneAsync(Dictionary<string, string> settings, string text)
    {
        var v1 = _repo.Commit("v1", PreviewTests.Site(text));
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        (await sarah.Api.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("none", null))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await sarah.ConnectAsync(_repo);
        var live = await sarah.LiveAsync(v1, TimeSpan.FromSeconds(90));
        var (origin, cookie) = await sarah.OpenAsync();
        (await sarah.FetchAsync(origin, "/", cookie)).Body.ShouldContain(text);
        live.Latest!.Status.ShouldBe("live");
    }

    public void Dispose() => _repo.Dispose();
}
