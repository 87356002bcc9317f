using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Features.Previews;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// What preview tests do as GitHub and as a member's browser: signed webhook deliveries, the team's preview state,
/// and requests to the preview's own origin (host names like TEAM.preview.localhost, connected to the server's
/// preview listener on loopback, as a browser resolves *.localhost).
/// </summary>
public sealed class PreviewClient(TestServer server, string accessToken) : IDisposable
{
    private readonly HttpClient _api = server.Client(accessToken);

    public HttpClient Api => _api;

    /// <summary>An HTTP client for preview origins: every connection goes to the server's preview listener; no cookie jar, no redirects.</summary>
    public static HttpClient Browser(TestServer server) => new(Handler(server)) { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>Connections to any host go to the server's preview listener on loopback (as a browser resolves *.localhost).</summary>
    public static SocketsHttpHandler Handler(TestServer server)
    {
        var port = server.App.Services.GetRequiredService<PreviewProxy>().Address!.Port;
        return new SocketsHttpHandler
        {
            UseCookies = false,
            AllowAutoRedirect = false,
            UseProxy = false,
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
    }

    public async Task<PreviewConnectedResponse> ConnectAsync(GitRepo repo, string branch = "main")
    {
        using var reply = await _api.PutAsJsonAsync("/api/preview", new SetPreviewRequest(repo.Path, branch));
        reply.StatusCode.ShouldBe(HttpStatusCode.OK, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<PreviewConnectedResponse>())!;
    }

    public async Task<PreviewDto> GetAsync()
    {
        using var reply = await _api.GetAsync("/api/preview");
        reply.StatusCode.ShouldBe(HttpStatusCode.OK, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<PreviewDto>())!;
    }

    public async Task<PreviewDeployDto[]> DeploysAsync()
    {
        using var reply = await _api.GetAsync("/api/preview/deploys?limit=100");
        reply.StatusCode.ShouldBe(HttpStatusCode.OK);
        return (await reply.Content.ReadFromJsonAsync<PreviewDeployListResponse>())!.Deploys;
    }

    /// <summary>Waits until the preview serves <paramref name="commit"/>.</summary>
    public Task<PreviewDto> LiveAsync(string commit, TimeSpan? timeout = null) =>
        Eventually.UntilAsync(GetAsync, p => p.Status == "live" && p.Commit == commit, $"commit {commit[..7]} live", timeout ?? TimeSpan.FromSeconds(60));

    /// <summary>Waits until the latest deploy (of <paramref name="commit"/>) ended failed, cancelled...</summary>
    public Task<PreviewDto> LatestAsync(string commit, string status, TimeSpan? timeout = null) =>
        Eventually.UntilAsync(GetAsync, p => p.Latest?.Commit == commit && p.Latest.Status == status && p.Current is null,
            $"the deploy of {commit[..7]} {status}", timeout ?? TimeSpan.FromSeconds(60));

    /// <summary>A push delivery, built and signed as GitHub does (HMAC-SHA256 of the raw body in X-Hub-Signature-256).</summary>
    public static HttpRequestMessage Delivery(string teamId, string? secret, string after, string branch = "main", string? deliveryId = null,
        string eventName = "push", string repositoryUrl = "https://github.com/acme/app.git", string? body = null, string? query = null)
    {
        body ??= JsonSerializer.Serialize(new
        {
            @ref = "refs/heads/" + branch,
            before = "0000000000000000000000000000000000000000",
            after,
            created = false,
            deleted = false,
            forced = false,
            repository = new { id = 1, name = "app", full_name = "acme/app", clone_url = repositoryUrl, html_url = repositoryUrl.Replace(".git", "", StringComparison.Ordinal) },
            pusher = new { name = "agent", email = "agent@example.com" },
            head_commit = new { id = after, message = "Agent's work" },
        });
        var bytes = Encoding.UTF8.GetBytes(body);
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/webhook/push" + (query ?? $"?team={teamId}")) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Add("X-GitHub-Event", eventName);
        request.Headers.Add("X-GitHub-Delivery", deliveryId ?? Guid.NewGuid().ToString());
        request.Headers.Add("User-Agent", "GitHub-Hookshot/abc123");
        if (secret is not null)
        {
            request.Headers.Add("X-Hub-Signature-256", GitHubPush.Sign(bytes, secret));
        }
        return request;
    }

    public async Task<HttpResponseMessage> PushAsync(string teamId, string secret, string after, string branch = "main", string? deliveryId = null)
    {
        using var anonymous = server.Client();
        return await anonymous.SendAsync(Delivery(teamId, secret, after, branch, deliveryId));
    }

    /// <summary>Opens the preview as a browser does with a one-time link; answers the preview origin's cookie.</summary>
    public async Task<(string Origin, string Cookie)> OpenAsync()
    {
        using var reply = await _api.PostAsync("/api/preview/link", null);
        reply.StatusCode.ShouldBe(HttpStatusCode.OK, await reply.Content.ReadAsStringAsync());
        var link = (await reply.Content.ReadFromJsonAsync<PreviewLinkResponse>())!;
        using var browser = Browser(server);
        using var opened = await browser.GetAsync(link.Url);
        opened.StatusCode.ShouldBe(HttpStatusCode.SeeOther, await opened.Content.ReadAsStringAsync());
        var cookie = opened.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith(PreviewAccess.CookieName + "=", StringComparison.Ordinal));
        var uri = new Uri(link.Url);
        return ($"{uri.Scheme}://{uri.Authority}", cookie.Split(';')[0]);
    }

    /// <summary>GET on the preview's origin with <paramref name="cookie"/> (name=value), as the browser would send it.</summary>
    public async Task<(HttpStatusCode Status, string Body)> FetchAsync(string origin, string path, string? cookie)
    {
        using var browser = Browser(server);
        using var request = new HttpRequestMessage(HttpMethod.Get, origin + path);
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }
        using var reply = await browser.SendAsync(request);
        return (reply.StatusCode, await reply.Content.ReadAsStringAsync());
    }

    public void Dispose() => _api.Dispose();
}
