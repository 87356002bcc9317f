using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>
/// The shared preview end to end: a real git repository as the team's "GitHub", deliveries signed as GitHub signs
/// them, builds and apps in the sandbox, the preview's own origin in front (seed 001's Scenario 3).
/// </summary>
public abstract class PreviewTests : IDisposable
{
    public static readonly Dictionary<string, string> Settings = new()
    {
        ["Covibe:Preview:AllowLocalRepositories"] = "true",
        ["Covibe:Preview:DrainSeconds"] = "1",
        ["Covibe:Preview:CheckSeconds"] = "0",
    };

    private readonly GitRepo _repo = GitRepo.Create();

    /// <summary>The database: SQLite in the data directory, or a fresh PostgreSQL database.</summary>
    protected virtual Task<string?> DatabaseAsync() => Task.FromResult<string?>(null);

    private async Task<TestServer> StartAsync(Dictionary<string, string>? settings = null, string? dataDirectory = null, string? database = null) =>
        await TestServer.StartAsync(postgres: database ?? await DatabaseAsync(), settings: settings ?? Settings, dataDirectory: dataDirectory);

    internal static Dictionary<string, string?> Site(string text) => new() { ["index.html"] = $"<h1>{text}</h1>" };

    [Fact]
    public async Task Pushes_RedeployForTheWholeTeam_ABrokenPushKeepsTheLastGoodVersion_AndTheNextGoodOneRecovers()
    {
        var v1 = _repo.Commit("v1", Site("v1"));
        await using var server = await StartAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        var teamId = owner.Auth.Team.Id;
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        using var miguel = new PreviewClient(server, member.AccessToken);
        await using var sarahHub = await server.ConnectAsync(owner.Auth.AccessToken);
        await using var miguelHub = await server.ConnectAsync(member.AccessToken);
        await sarahHub.ReceiveAsync("team_joined");
        await miguelHub.ReceiveAsync("team_joined");
        // Miguel's phone too: seed 001's Socket.IO client, as its app listens: socket.on('preview_updated', {url, commit}).
        await using var miguelPhone = await SocketIoClient.NodeAsync(server.Url, new { auth = new { token = member.AccessToken } });
        await miguelPhone.EventAsync("team_joined");

        // Connecting deploys the branch's head at once, without waiting for a push.
        var connected = await sarah.ConnectAsync(_repo);
        connected.WebhookSecret.Length.ShouldBeGreaterThanOrEqualTo(32);
        connected.WebhookUrl.ShouldBe($"{server.Url.ToString().TrimEnd('/')}/api/webhook/push?team={teamId}");
        var live = await miguel.LiveAsync(v1);
        live.Url.ShouldBe($"http://{teamId}.preview.localhost:{new Uri(live.Url!).Port}/");
        live.Latest!.ProjectType.ShouldBe("static");
        (await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "preview_updated" && m.GetProperty("commit").GetString() == v1))
            .GetProperty("url").GetString().ShouldBe(live.Url);
        (await miguelPhone.EventAsync("preview_updated", m => m.GetProperty("commit").GetString() == v1, TimeSpan.FromSeconds(30)))
            .GetProperty("url").GetString().ShouldBe(live.Url);
        var (origin, cookie) = await miguel.OpenAsync();
        (await miguel.FetchAsync(origin, "/", cookie)).Body.ShouldContain("v1");

        // The agent pushes v2: both members hear preview_updated only once v2 answers, and v2 is what they get.
        // Requests keep being answered all through the switch.
        var v2 = _repo.Commit("v2", Site("v2"));
        var failures = new List<string>();
        using var stop = new CancellationTokenSource();
        var traffic = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var (status, body) = await miguel.FetchAsync(origin, "/", cookie);
                if (status != HttpStatusCode.OK || !(body.Contains("v1") || body.Contains("v2")))
                {
                    failures.Add($"{(int)status}: {body}");
                }
            }
        });
        using (var pushed = await sarah.PushAsync(teamId, connected.WebhookSecret, v2))
        {
            pushed.StatusCode.ShouldBe(HttpStatusCode.Accepted, await pushed.Content.ReadAsStringAsync());
            (await pushed.Content.ReadFromJsonAsync<WebhookResponse>())!.Result.ShouldBe("queued");
        }
        foreach (var hub in new[] { sarahHub, miguelHub })
        {
            var updated = await hub.ReceiveAsync(m => m.GetProperty("type").GetString() == "preview_updated" && m.GetProperty("commit").GetString() == v2, TimeSpan.FromSeconds(60));
            updated.GetProperty("url").GetString().ShouldBe(live.Url);
        }
        (await miguel.FetchAsync(origin, "/", cookie)).Body.ShouldContain("v2");
        await Task.Delay(1500); // the old version drains and stops meanwhile
        await stop.CancelAsync();
        await traffic;
        failures.ShouldBeEmpty("no request fails while the preview switches versions");

        // A broken push: the build fails, v2 stays live, the team is told why and can read the build's log.
        var v3 = _repo.Commit("v3 broken", new() { ["covibe.preview.json"] = """{"build": "echo compiling v3; exit 3", "static": "."}""" });
        (await sarah.PushAsync(teamId, connected.WebhookSecret, v3)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var failed = await miguelHub.ReceiveAsync(m => m.GetProperty("type").GetString() == "preview_status"
            && m.GetProperty("preview").GetProperty("latest").ValueKind == JsonValueKind.Object
            && m.GetProperty("preview").GetProperty("latest").GetProperty("commit").GetString() == v3
            && m.GetProperty("preview").GetProperty("latest").GetProperty("status").GetString() == "failed", TimeSpan.FromSeconds(60));
        var state = failed.GetProperty("preview");
        state.GetProperty("status").GetString().ShouldBe("live");
        state.GetProperty("commit").GetString().ShouldBe(v2);
        state.GetProperty("error").GetString()!.ShouldContain("The build failed (exit code 3)");
        (await miguel.FetchAsync(origin, "/", cookie)).Body.ShouldContain("v2");
        using (var page = await miguel.Api.GetAsync($"/api/preview/deploys/{state.GetProperty("latest").GetProperty("id").GetString()}/log?from=0&wait=10"))
        {
            var log = await page.Content.ReadAsStringAsync();
            log.ShouldContain("compiling v3");
            log.ShouldContain("The build failed (exit code 3)");
            // The one contract of reads from a position: the failed deploy's log is all there (and its own headers as before).
            page.Headers.GetValues("Covibe-Position").Single().ShouldBe("0");
            page.Headers.GetValues("Covibe-Next").Single().ShouldBe(page.Headers.GetValues("Covibe-Log-Next").Single());
            page.Headers.GetValues("Covibe-Complete").Single().ShouldBe("true");
            page.Headers.GetValues("Covibe-Deploy-Status").Single().ShouldBe("failed");
        }

        // The next good push recovers.
        var v4 = _repo.Commit("v4 fixed", new() { ["covibe.preview.json"] = null, ["index.html"] = "<h1>v4</h1>" });
        (await sarah.PushAsync(teamId, connected.WebhookSecret, v4)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var recovered = await miguel.LiveAsync(v4);
        recovered.Error.ShouldBeNull();
        (await miguel.FetchAsync(origin, "/", cookie)).Body.ShouldContain("v4");
    }

    [Fact]
    public async Task Webhook_RefusesForgedAndUnsignedDeliveries_AnswersPings_IgnoresOtherBranches_AndDeploysARedeliveryOnce()
    {
        var v1 = _repo.Commit("v1", Site("v1"));
        await using var server = await StartAsync();
        var owner = await server.CreateTeamAsync();
        var teamId = owner.Auth.Team.Id;
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        var connected = await sarah.ConnectAsync(_repo);
        await sarah.LiveAsync(v1);
        using var github = server.Client();
        var v2 = _repo.Commit("v2", Site("v2"));

        // Unsigned, signed with another secret, and a body changed after signing: 401, nothing queued.
        await (await github.SendAsync(PreviewClient.Delivery(teamId, null, v2))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "webhook-signature");
        await (await github.SendAsync(PreviewClient.Delivery(teamId, "not-the-secret", v2))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "webhook-signature");
        var tampered = PreviewClient.Delivery(teamId, connected.WebhookSecret, v1);
        var signature = tampered.Headers.GetValues("X-Hub-Signature-256").Single();
        var forged = PreviewClient.Delivery(teamId, null, v2);
        forged.Headers.Add("X-Hub-Signature-256", signature);
        await (await github.SendAsync(forged)).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "webhook-signature");
        // Another team's id with this team's secret.
        var other = await server.CreateTeamAsync("Other", "Olga");
        await (await github.SendAsync(PreviewClient.Delivery(other.Auth.Team.Id, connected.WebhookSecret, v2))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "webhook-signature");

        // GitHub's ping when the webhook is added.
        using (var ping = await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v2, eventName: "ping", body: """{"zen": "Keep it logically awesome.", "hook_id": 1}""")))
        {
            ping.StatusCode.ShouldBe(HttpStatusCode.OK);
            (await ping.Content.ReadFromJsonAsync<WebhookResponse>())!.Result.ShouldBe("pong");
        }
        // A push to another branch is acknowledged and ignored.
        using (var elsewhere = await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v2, branch: "feature")))
        {
            elsewhere.StatusCode.ShouldBe(HttpStatusCode.Accepted);
            (await elsewhere.Content.ReadFromJsonAsync<WebhookResponse>())!.Result.ShouldBe("ignored");
        }
        // A signed body that is not a push event, and one too large: clear errors, nothing queued.
        await (await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v2, body: "{not json"))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "webhook-payload");
        await (await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v2, body: """{"zen": "no ref"}"""))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "webhook-payload");
        await (await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v2, body: new string(' ', 26 * 1024 * 1024)))).ShouldBeProblemAsync(HttpStatusCode.RequestEntityTooLarge, "payload-too-large");
        (await sarah.DeploysAsync()).Length.ShouldBe(1);

        // The real push, then GitHub's redelivery of it (same X-GitHub-Delivery): one deploy.
        var delivery = Guid.NewGuid().ToString();
        (await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v2, deliveryId: delivery))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        using (var again = await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v2, deliveryId: delivery)))
        {
            again.StatusCode.ShouldBe(HttpStatusCode.OK);
            (await again.Content.ReadFromJsonAsync<WebhookResponse>())!.Result.ShouldBe("duplicate");
        }
        await sarah.LiveAsync(v2);
        (await sarah.DeploysAsync()).Count(d => d.Commit == v2).ShouldBe(1);

        // Seed 001's exact route, without ?team=: the repository in the delivery names the team.
        var v3 = _repo.Commit("v3", Site("v3"));
        (await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v3, repositoryUrl: _repo.Path, query: ""))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await sarah.LiveAsync(v3);

        // A rotated secret: the old one stops working at once.
        using var rotated = await sarah.Api.PostAsync("/api/preview/webhook-secret", null);
        var fresh = (await rotated.Content.ReadFromJsonAsync<PreviewConnectedResponse>())!;
        fresh.WebhookSecret.ShouldNotBe(connected.WebhookSecret);
        var v4 = _repo.Commit("v4", Site("v4"));
        await (await github.SendAsync(PreviewClient.Delivery(teamId, connected.WebhookSecret, v4))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "webhook-signature");
        (await github.SendAsync(PreviewClient.Delivery(teamId, fresh.WebhookSecret, v4))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await sarah.LiveAsync(v4);

        // The secret is never written down in plain text.
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, fresh.WebhookSecret, connected.WebhookSecret);
    }

    [Fact]
    public async Task QuickPushes_BuildOnceOrTwice_EndingOnTheNewest_AndCancelReallyStopsABuild()
    {
        static Dictionary<string, string?> Slow(string text, int seconds) => new()
        {
            ["index.html"] = $"<h1>{text}</h1>",
            ["covibe.preview.json"] = $$"""{"build": "echo building {{text}}; sleep {{seconds}}", "static": "."}""",
        };
        var v1 = _repo.Commit("v1", Slow("v1", 2));
        await using var server = await StartAsync();
        var owner = await server.CreateTeamAsync();
        var teamId = owner.Auth.Team.Id;
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        var connected = await sarah.ConnectAsync(_repo);
        await Eventually.UntilAsync(sarah.GetAsync, p => p.Status == "building", "v1 building");
        var v2 = _repo.Commit("v2", Slow("v2", 2));
        (await sarah.PushAsync(teamId, connected.WebhookSecret, v2)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var v3 = _repo.Commit("v3", Slow("v3", 2));
        (await sarah.PushAsync(teamId, connected.WebhookSecret, v3)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await sarah.LiveAsync(v3);
        var deploys = await sarah.DeploysAsync();
        deploys.Single(d => d.Commit == v2).Status.ShouldBe("skipped");
        deploys.Count(d => d.StartedAt is not null).ShouldBeLessThanOrEqualTo(2);

        // A build that would take a minute, cancelled: it stops, and v3 stays live.
        var v4 = _repo.Commit("v4", Slow("v4", 60));
        (await sarah.PushAsync(teamId, connected.WebhookSecret, v4)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var building = await Eventually.UntilAsync(sarah.GetAsync, p => p.Current is { Status: "building", LogBytes: > 0 }, "v4 building");
        using (var cancelled = await sarah.Api.PostAsync("/api/preview/cancel", null))
        {
            cancelled.StatusCode.ShouldBe(HttpStatusCode.OK, await cancelled.Content.ReadAsStringAsync());
        }
        var after = await sarah.LatestAsync(v4, "cancelled");
        after.Commit.ShouldBe(v3);
        after.Status.ShouldBe("live");
        await Eventually.UntilAsync(() => Task.FromResult(TestServer.ProcessesMentioning("preview-" + building.Current!.Id).Count == 0), "the cancelled build's processes gone");
        await (await sarah.Api.PostAsync("/api/preview/cancel", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "nothing-to-cancel");
    }

    [Fact]
    public async Task LiveVersionStopsWhileAPushBuilds_ThePushGoesLive_NotTheOldCommitAgain()
    {
        static Dictionary<string, string?> Site(string text, int buildSeconds) => new()
        {
            ["index.html"] = $"<h1>{text}</h1>",
            ["covibe.preview.json"] = $$"""{"build": "echo building {{text}}; sleep {{buildSeconds}}", "static": "."}""",
        };
        var v1 = _repo.Commit("v1", Site("v1", 0));
        await using var server = await StartAsync();
        var owner = await server.CreateTeamAsync();
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        var connected = await sarah.ConnectAsync(_repo);
        await sarah.LiveAsync(v1);
        var live = (await sarah.DeploysAsync()).Single(d => d.Status == "live");

        var v2 = _repo.Commit("v2", Site("v2", 10));
        (await sarah.PushAsync(owner.Auth.Team.Id, connected.WebhookSecret, v2)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await Eventually.UntilAsync(sarah.GetAsync, p => p.Current is { Status: "building", LogBytes: > 0 } current && current.Commit == v2, "v2 building");
        // Meanwhile the live app dies on its own: the deployer notices within a second or two, while v2 still builds.
        foreach (var pid in TestServer.ProcessesMentioning("preview-" + live.Id))
        {
            try
            {
                System.Diagnostics.Process.GetProcessById(pid).Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                // Gone already.
            }
        }
        await Eventually.UntilAsync(sarah.DeploysAsync, d => d.Any(x => x.Id == live.Id && x.Status == "failed"), "the stopped live version noticed");

        // The push, not the old commit deployed again in its place, is what serves.
        var served = await sarah.LiveAsync(v2, TimeSpan.FromSeconds(60));
        served.Commit.ShouldBe(v2);
        (await sarah.DeploysAsync()).ShouldNotContain(d => d.Commit == v1 && d.Trigger == "restart" && d.StartedAt != null);
    }

    [Fact]
    public async Task ServerRestartMidBuild_EndsWithTheNewestCommitLive_AndAMissedWebhookIsCaughtByTheBranchCheck()
    {
        var data = StartupTests.TempDirectory();
        try
        {
            var v1 = _repo.Commit("v1", new() { ["index.html"] = "<h1>v1</h1>", ["covibe.preview.json"] = """{"build": "sleep 3", "static": "."}""" });
            string token;
            var database = await DatabaseAsync();
            await using (var first = await StartAsync(dataDirectory: data, database: database))
            {
                var owner = await first.CreateTeamAsync();
                token = owner.Auth.AccessToken;
                using var sarah = new PreviewClient(first, token);
                await sarah.ConnectAsync(_repo);
                await Eventually.UntilAsync(sarah.GetAsync, p => p.Current is { Status: "building", LogBytes: > 0 }, "v1 building");
            }
            var settings = new Dictionary<string, string>(Settings) { ["Covibe:Preview:CheckSeconds"] = "1" };
            await using var second = await StartAsync(settings, data, database);
            using var again = new PreviewClient(second, token);
            await again.LiveAsync(v1);
            (await again.DeploysAsync()).ShouldContain(d => d.Commit == v1 && d.Status == "cancelled" && d.Error!.Contains("server restart"));

            // A push whose webhook never arrives (GitHub down): the server's own look at the branch deploys it.
            var v2 = _repo.Commit("v2", new() { ["index.html"] = "<h1>v2</h1>", ["covibe.preview.json"] = null });
            var live = await again.LiveAsync(v2);
            (await again.DeploysAsync()).First(d => d.Commit == v2).Trigger.ShouldBe("check");
            live.CheckedAt.ShouldNotBeNull();
        }
        finally
        {
            TestServer.KillAgentsOf(data);
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task PreviewOrigin_OnlyTheTeamGetsIn_CovibesCookieNeverReachesTheApp_AndWebSocketsPassThrough()
    {
        var v1 = _repo.Commit("node app", new()
        {
            ["package.json"] = """{"name": "app", "scripts": {"start": "node server.js"}}""",
            ["server.js"] = EchoServer,
        });
        await using var server = await StartAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        var teamId = owner.Auth.Team.Id;
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        using var miguel = new PreviewClient(server, member.AccessToken);
        await sarah.ConnectAsync(_repo);
        var live = await miguel.LiveAsync(v1);
        live.Latest!.ProjectType.ShouldBe("node");
        var (origin, cookie) = await miguel.OpenAsync();

        // The app sees the member's request, its own cookies, but never Covibe's, and cannot plant one.
        using var browser = PreviewClient.Browser(server);
        using var request = new HttpRequestMessage(HttpMethod.Get, origin + "/api/preview");
        request.Headers.Add("Cookie", $"theme=dark; {cookie}; covibe_refresh=the-members-login");
        using var reply = await browser.SendAsync(request);
        reply.StatusCode.ShouldBe(HttpStatusCode.OK);
        var echo = JsonDocument.Parse(await reply.Content.ReadAsStringAsync()).RootElement;
        echo.GetProperty("path").GetString().ShouldBe("/api/preview", "the preview's origin reaches the app, never Covibe's API");
        echo.GetProperty("cookie").GetString().ShouldBe("theme=dark");
        reply.Headers.GetValues("Set-Cookie").ShouldBe(["app=1; Path=/"]);

        // WebSockets (a dev server's hot reload) pass through.
        using (var socket = new ClientWebSocket())
        {
            socket.Options.SetRequestHeader("Cookie", cookie);
            using var invoker = new HttpMessageInvoker(PreviewClient.Handler(server));
            await socket.ConnectAsync(new Uri(origin.Replace("http://", "ws://", StringComparison.Ordinal) + "/hmr"), invoker, CancellationToken.None);
            var buffer = new byte[100];
            var got = await socket.ReceiveAsync(buffer, CancellationToken.None);
            Encoding.UTF8.GetString(buffer, 0, got.Count).ShouldBe("hot reload ready");
        }

        // No cookie, a made-up one, another team's member, a link used twice: refused.
        (await miguel.FetchAsync(origin, "/", null)).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await miguel.FetchAsync(origin, "/", "covibe_preview=made-up")).Status.ShouldBe(HttpStatusCode.Unauthorized);
        var outsider = await server.CreateTeamAsync("Other", "Olga");
        using var olga = new PreviewClient(server, outsider.Auth.AccessToken);
        var otherRepo = GitRepo.Create();
        try
        {
            var theirs = otherRepo.Commit("theirs", Site("theirs"));
            await olga.ConnectAsync(otherRepo);
            await olga.LiveAsync(theirs);
            var (olgasOrigin, olgasCookie) = await olga.OpenAsync();
            olgasOrigin.ShouldNotBe(origin, "each team's preview has its own origin");
            (await olga.FetchAsync(origin, "/", olgasCookie)).Status.ShouldBe(HttpStatusCode.Unauthorized, "another team's preview cookie opens nothing here");
            (await olga.FetchAsync(olgasOrigin, "/", cookie)).Status.ShouldBe(HttpStatusCode.Unauthorized);
            using var link = await olga.Api.PostAsync("/api/preview/link", null);
            var olgasLink = (await link.Content.ReadFromJsonAsync<PreviewLinkResponse>())!.Url;
            var onOurHost = origin + new Uri(olgasLink).PathAndQuery;
            (await olga.FetchAsync(onOurHost, "", null)).Status.ShouldBe(HttpStatusCode.Forbidden, "a link opens only its own team's preview");
        }
        finally
        {
            otherRepo.Dispose();
        }
        using (var once = await miguel.Api.PostAsync("/api/preview/link", null))
        {
            var url = (await once.Content.ReadFromJsonAsync<PreviewLinkResponse>())!.Url;
            url.ShouldStartWith(origin + "/.covibe/open?code=");
            (await miguel.FetchAsync(url, "", null)).Status.ShouldBe(HttpStatusCode.SeeOther);
            (await miguel.FetchAsync(url, "", null)).Status.ShouldBe(HttpStatusCode.Forbidden, "a link works once");
        }

        // Signing out ends the preview session that came from that login.
        using (var logout = await miguel.Api.PostAsJsonAsync("/api/auth/logout", new LogoutRequest(member.RefreshToken)))
        {
            logout.IsSuccessStatusCode.ShouldBeTrue();
        }
        (await miguel.FetchAsync(origin, "/", cookie)).Status.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task ALiveVersionThatStopsAnsweringItsHealthCheck_IsDeployedAgain()
    {
        var v1 = _repo.Commit("app with a health path", new()
        {
            ["covibe.preview.json"] = """{"start": "node server.js", "health": "/health"}""",
            ["server.js"] = """
                const fs = require('fs');
                require('http').createServer((q, s) => {
                  if (q.url === '/health' && fs.existsSync('broken')) { s.statusCode = 500; return s.end('sick'); }
                  s.end('<h1>healthy</h1>');
                }).listen(Number(process.env.PORT), '127.0.0.1');
                """,
        });
        var settings = new Dictionary<string, string>(Settings)
        {
            ["Covibe:Containers:HealthCheckIntervalSeconds"] = "1",
            ["Covibe:Containers:HealthCheckTimeoutSeconds"] = "1",
            ["Covibe:Containers:HealthCheckRetries"] = "2",
        };
        await using var server = await StartAsync(settings);
        var owner = await server.CreateTeamAsync();
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        await sarah.ConnectAsync(_repo);
        var first = (await sarah.LiveAsync(v1)).Latest!;

        // The app starts failing its health check (seed 003: checked every interval, so many retries).
        await File.WriteAllTextAsync(Path.Combine(server.DataDirectory, "previews", owner.Auth.Team.Id, first.Id, "broken"), "yes");
        var again = await Eventually.UntilAsync(sarah.GetAsync, p => p.Status == "live" && p.Latest!.Id != first.Id, "the commit deployed again", TimeSpan.FromSeconds(60));
        again.Commit.ShouldBe(v1);
        again.Latest!.Trigger.ShouldBe("restart");
        var failed = (await sarah.DeploysAsync()).Single(d => d.Id == first.Id);
        failed.Status.ShouldBe("failed");
        failed.Error!.ShouldContain("stopped answering its health check (GET /health");
    }

    [Fact]
    public async Task Connecting_IsTheOwners_AndABadRepositoryOrBranchIsAClearError()
    {
        _repo.Commit("v1", Site("v1"));
        await using var server = await StartAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        using var miguel = new PreviewClient(server, member.AccessToken);

        await (await miguel.Api.GetAsync("/api/preview")).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await miguel.Api.PutAsJsonAsync("/api/preview", new SetPreviewRequest(_repo.Path))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await miguel.Api.PostAsync("/api/preview/link", null)).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        var missingBranch = await (await sarah.Api.PutAsJsonAsync("/api/preview", new SetPreviewRequest(_repo.Path, "release"))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        missingBranch.GetProperty("errors").GetProperty("branch")[0].GetString()!.ShouldContain("no branch 'release'");
        foreach (var bad in new[] { "", "-uhelp", "ssh://git@github.com/acme/app.git", "https://user:token@github.com/acme/app.git", "ext::sh -c touch% /tmp/pwned" })
        {
            await (await sarah.Api.PutAsJsonAsync("/api/preview", new SetPreviewRequest(bad))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        }
        (await sarah.Api.PutAsJsonAsync("/api/preview", new SetPreviewRequest(_repo.Path))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await (await miguel.Api.PostAsync("/api/preview/redeploy", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await miguel.Api.PostAsync("/api/preview/webhook-secret", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await miguel.GetAsync()).RepositoryUrl.ShouldBe(_repo.Path);

        // Disconnecting is the owner's too, and it stops what serves.
        var live = (await sarah.LiveAsync(_repo.Head())).Latest!;
        TestServer.ProcessesMentioning("preview-" + live.Id).ShouldNotBeEmpty();
        // A long poll at the end of a live deploy's log answers at once (the deploy is no longer under way), so
        // `covibe preview logs -f` stops when the preview is live instead of waiting out its 25 s.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (var end = await sarah.Api.GetAsync($"/api/preview/deploys/{live.Id}/log?from={live.LogBytes}&wait=20"))
        {
            end.StatusCode.ShouldBe(HttpStatusCode.OK);
            end.Headers.GetValues("Covibe-Deploy-Status").Single().ShouldBe("live");
            end.Headers.GetValues("Covibe-Complete").Single().ShouldBe("false", "a live app may still write");
        }
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10));
        // A repository that can no longer be read: a redeploy says so, and queues nothing.
        Directory.Move(_repo.Path, _repo.Path + "-moved");
        try
        {
            var unreadable = await (await sarah.Api.PostAsync("/api/preview/redeploy", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "repository-unreadable");
            unreadable.GetProperty("detail").GetString()!.ShouldContain("could not be read");
            (await sarah.DeploysAsync()).ShouldHaveSingleItem();
        }
        finally
        {
            Directory.Move(_repo.Path + "-moved", _repo.Path);
        }
        await (await miguel.Api.DeleteAsync("/api/preview")).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await sarah.Api.DeleteAsync("/api/preview")).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        await (await miguel.Api.GetAsync("/api/preview")).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        await Eventually.UntilAsync(() => Task.FromResult(TestServer.ProcessesMentioning("preview-" + live.Id).Count == 0), "the disconnected preview's app stopped");
    }

    [Fact]
    public async Task RepositoriesOnTheServersDisk_AreRefused_UnlessTheOperatorAllowsThem()
    {
        _repo.Commit("v1", Site("v1"));
        await using var server = await TestServer.StartAsync(postgres: await DatabaseAsync());
        var owner = await server.CreateTeamAsync();
        using var sarah = new PreviewClient(server, owner.Auth.AccessToken);
        foreach (var local in new[] { _repo.Path, "file://" + _repo.Path })
        {
            var problem = await (await sarah.Api.PutAsJsonAsync("/api/preview", new SetPreviewRequest(local))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
            problem.GetProperty("errors").GetProperty("repositoryUrl")[0].GetString()!.ShouldContain("https");
        }
    }

    /// <summary>A preview app that echoes what reaches it, sets its own cookie (and tries to plant Covibe's), and speaks just enough WebSocket for hot reload.</summary>
    private const string EchoServer = """
        const http = require('http'), crypto = require('crypto');
        const server = http.createServer((req, res) => {
          res.setHeader('content-type', 'application/json');
          res.setHeader('set-cookie', ['app=1; Path=/', 'covibe_preview=planted; Path=/']);
          res.end(JSON.stringify({ path: req.url, cookie: req.headers.cookie || null, authorization: req.headers.authorization || null }));
        });
        server.on('upgrade', (req, socket) => {
          const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
          socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + '\r\n\r\n');
          const text = Buffer.from('hot reload ready');
          socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
        });
        server.listen(Number(process.env.PORT), '127.0.0.1');
        """;

    public void Dispose()
    {
        _repo.Dispose();
        GC.SuppressFinalize(this);
    }
}

public sealed class SqlitePreviewTests : PreviewTests;

[Collection(PostgresGroup.Name)]
public sealed class PostgresPreviewTests(PostgresServer postgres) : PreviewTests
{
    protected override async Task<string?> DatabaseAsync() => await postgres.CreateDatabaseAsync();
}
