using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;

/// <summary>
/// Preview benchmark (issue 12): push-to-live time (the webhook received -> <c>preview_updated</c> on the hub) for
/// a small static site and a small Node app, and the switch-over gap: requests that fail while the preview
/// moves to the new version (goal 0), from a client that keeps asking the preview's origin all along. A real
/// <c>covibe serve</c>, a real git repository on this disk as the team's "GitHub", deliveries signed as GitHub
/// signs them; the apps run in the sandbox.
///   dotnet run -c Release --project bench/Covibe.Bench -- preview [--pushes 10]
/// </summary>
static class PreviewBench
{
    public static async Task RunAsync(string[] args)
    {
        var pushes = Measure.Arg(args, "--pushes", 10);
        var work = Path.Combine(Path.GetTempPath(), "covibe-preview-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        try
        {
            Console.WriteLine($"{pushes} pushes each, {TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores");
            Console.WriteLine();
            Console.WriteLine("| app | push to live p50 / max | requests during the switches | failed |");
            Console.WriteLine("| --- | --- | --- | --- |");
            foreach (var app in (string[])["static", "node"])
            {
                var (times, requests, failed) = await RunAppAsync(work, app, pushes);
                Array.Sort(times);
                Console.WriteLine($"| {app} | {Measure.Percentile(times, 0.5)} / {times[^1]} ms | {requests} | {failed} |");
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static Dictionary<string, string> Files(string app, int version) => app == "static"
        ? new() { ["index.html"] = $"<h1>version {version}</h1>" }
        : new()
        {
            ["package.json"] = """{"name": "bench-app", "scripts": {"start": "node server.js"}}""",
            ["server.js"] = $"require('http').createServer((q, s) => s.end('<h1>version {version}</h1>')).listen(Number(process.env.PORT), '127.0.0.1');\n",
        };

    private static async Task<(long[] Times, long Requests, long Failed)> RunAppAsync(string work, string app, int pushes)
    {
        var repo = Path.Combine(work, "repo-" + app);
        Directory.CreateDirectory(repo);
        BenchGit.Run(repo, "init", "-q", "-b", "main");
        BenchGit.Commit(repo, Files(app, 0));
        var data = Path.Combine(work, "data-" + app);
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(data, url, "--Covibe:Preview:AllowLocalRepositories=true", "--Covibe:Preview:CheckSeconds=0", "--Covibe:Preview:DrainSeconds=1");
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var token = await Measure.CreateTeamAsync(http);
            using var hub = await Measure.JoinHubAsync(url, token, followAgents: false);
            var updates = System.Threading.Channels.Channel.CreateUnbounded<string>();
            _ = Measure.ListenAsync(hub, "preview_updated", (message, _) => updates.Writer.TryWrite(message.GetProperty("commit").GetString()!));

            using var connect = await http.PutAsJsonAsync("/api/preview", new SetPreviewRequest(repo, "main"), CovibeJsonContext.Default.SetPreviewRequest);
            var connected = (await connect.Content.ReadFromJsonAsync(CovibeJsonContext.Default.PreviewConnectedResponse))!;
            var teamId = new Uri(connected.WebhookUrl).Query.Split("team=")[1];
            await WaitForAsync(updates, BenchGit.Run(repo, "rev-parse", "HEAD").Trim());

            // A member's browser on the preview's own origin, asking for the page all the time.
            using var link = await http.PostAsync("/api/preview/link", null);
            var open = (await link.Content.ReadFromJsonAsync(CovibeJsonContext.Default.PreviewLinkResponse))!.Url;
            var proxyPort = new Uri(open).Port;
            using var browser = new HttpClient(new SocketsHttpHandler
            {
                UseCookies = false, AllowAutoRedirect = false, UseProxy = false,
                ConnectCallback = async (_, ct) =>
                {
                    var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, proxyPort), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            });
            using var opened = await browser.GetAsync(open);
            var cookie = opened.Headers.GetValues("Set-Cookie").First().Split(';')[0];
            var origin = new Uri(open).GetLeftPart(UriPartial.Authority);
            long requests = 0, failed = 0;
            using var stop = new CancellationTokenSource();
            var traffic = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, origin + "/");
                    request.Headers.Add("Cookie", cookie);
                    try
                    {
                        using var reply = await browser.SendAsync(request);
                        var body = await reply.Content.ReadAsStringAsync();
                        Interlocked.Increment(ref requests);
                        if (reply.StatusCode != HttpStatusCode.OK || !body.Contains("version", StringComparison.Ordinal))
                        {
                            Interlocked.Increment(ref failed);
                        }
                    }
                    catch (HttpRequestException)
                    {
                        Interlocked.Increment(ref requests);
                        Interlocked.Increment(ref failed);
                    }
                }
            });

            var times = new List<long>();
            for (var version = 1; version <= pushes; version++)
            {
                var commit = BenchGit.Commit(repo, Files(app, version));
                var body = JsonSerializer.SerializeToUtf8Bytes(new { @ref = "refs/heads/main", after = commit, repository = new { clone_url = repo } });
                using var delivery = new HttpRequestMessage(HttpMethod.Post, $"/api/webhook/push?team={teamId}") { Content = new ByteArrayContent(body) };
                delivery.Content.Headers.ContentType = new("application/json");
                delivery.Headers.Add("X-GitHub-Event", "push");
                delivery.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
                delivery.Headers.Add("X-Hub-Signature-256", "sha256=" + Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(connected.WebhookSecret), body)));
                var watch = Stopwatch.StartNew();
                using var pushed = await http.SendAsync(delivery);
                pushed.EnsureSuccessStatusCode();
                await WaitForAsync(updates, commit);
                times.Add(watch.ElapsedMilliseconds);
                await Task.Delay(1500); // the old version drains and stops while the client keeps asking
            }
            await stop.CancelAsync();
            await traffic;
            return ([.. times], requests, failed);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
            KillJobs(data);
        }
    }

    private static async Task WaitForAsync(System.Threading.Channels.Channel<string> updates, string commit)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        while (await updates.Reader.ReadAsync(timeout.Token) != commit)
        {
        }
    }

    /// <summary>The preview apps live on after their server, like agents: the benchmark's must not.</summary>
    private static void KillJobs(string data)
    {
        using var kill = Process.Start("pkill", ["-f", Path.Combine(data, "agents")]);
        kill.WaitForExit();
    }
}
