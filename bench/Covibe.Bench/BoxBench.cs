using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;

/// <summary>
/// Box benchmark (issue 13): claim latency from a warm pool, one at a time and 20 at once (goal p50 at most 50 ms, p99 at
/// most 150 ms, as a client sees it over HTTP on loopback, and as the server measures it); cold provision time of a small
/// repository (default image, a dev container through the real Dev Containers CLI, and a VM over SSH: a real sshd); refill time of the pool after a
/// burst of claims. A real <c>covibe serve</c>, a real Podman (started here), a git repository on this disk.
///   dotnet run -c Release --project bench/Covibe.Bench -- boxes [--claims 20] [--cold 5]
/// </summary>
static class BoxBench
{
    public static async Task RunAsync(string[] args)
    {
        var claims = Measure.Arg(args, "--claims", 20);
        var cold = Measure.Arg(args, "--cold", 5);
        var work = Path.Combine(Path.GetTempPath(), "covibe-box-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        await using var podman = await BenchPodman.StartAsync(work);
        var repo = Path.Combine(work, "repo");
        Directory.CreateDirectory(repo);
        BenchGit.Run(repo, "init", "-q", "-b", "main");
        BenchGit.Commit(repo, new() { ["README.md"] = "# app\n", ["src/index.js"] = "console.log('hello');\n", ["package.json"] = "{\"name\": \"app\"}\n" });
        var dev = Path.Combine(work, "repo-devcontainer");
        Directory.CreateDirectory(dev);
        BenchGit.Run(dev, "init", "-q", "-b", "main");
        BenchGit.Commit(dev, new()
        {
            ["README.md"] = "# app\n",
            [".devcontainer/devcontainer.json"] = $$"""{ "image": "{{BenchPodman.Image}}", "remoteUser": "covibe", "postCreateCommand": "ls > /dev/null" }""",
        });

        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(Path.Combine(work, "data"), url, $"--Covibe:Containers:Host={podman.Host}", $"--Covibe:Containers:Image={BenchPodman.Image}",
            "--Covibe:Boxes:AllowLocalRepositories=true", "--Covibe:Boxes:ReconcileSeconds=1", "--Covibe:Boxes:MaxBoxesPerTeam=1000",
            "--Covibe:Boxes:MaxPoolInstances=1000");
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(5) };
            await Measure.CreateTeamAsync(http);
            Console.WriteLine($"{TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores, Podman {podman.Host}");
            Console.WriteLine();

            // Cold: no pool, a box made for the request; from the request to ready.
            Console.WriteLine("| cold provision (request -> ready) | p50 | max |");
            Console.WriteLine("| --- | --- | --- |");
            // The VM: a real sshd on loopback, registered as the member's VM (the repository on this disk is the VM's to clone too).
            await using var sshd = await BenchSshd.StartAsync(work);
            using var registered = await http.PostAsJsonAsync("/api/vm/register",
                new RegisterVmRequest("bench VM", "127.0.0.1", sshd.Port, sshd.User, PrivateKey: sshd.PrivateKey, HostKeyFingerprint: sshd.HostKeyFingerprint),
                CovibeJsonContext.Default.RegisterVmRequest);
            var vm = registered.IsSuccessStatusCode ? (await registered.Content.ReadFromJsonAsync(CovibeJsonContext.Default.VmDto))!.Id
                : throw new InvalidOperationException($"Registering the VM: {await registered.Content.ReadAsStringAsync()}");
            foreach (var (name, path, count, vmId) in new[] { ("default image", repo, cold, (string?)null), ("dev container (devcontainer up)", dev, Math.Max(1, cold / 2), null),
                ("VM over SSH (clone there)", repo, cold, vm) })
            {
                var times = new List<long>();
                for (var i = 0; i < count; i++)
                {
                    var watch = Stopwatch.StartNew();
                    var box = await RequestAsync(http, path, vmId);
                    while (box.Status == "provisioning")
                    {
                        await Task.Delay(20);
                        box = (await http.GetFromJsonAsync($"/api/boxes/{box.Id}", CovibeJsonContext.Default.BoxDto))!;
                    }
                    if (box.Status != "ready")
                    {
                        throw new InvalidOperationException($"The box failed: {box.Error}");
                    }
                    times.Add(watch.ElapsedMilliseconds);
                    await ReleaseAsync(http, box.Id);
                }
                var sorted = times.Order().ToArray();
                Console.WriteLine($"| {name} | {Measure.Percentile(sorted, 0.5)} ms | {sorted[^1]} ms |");
            }
            Console.WriteLine();

            // Warm: a pool of `claims` standbys.
            var fill = Stopwatch.StartNew();
            (await http.PutAsJsonAsync("/api/pools", new[] { new PoolSpec(repo, "main", claims, claims * 2) }, CovibeJsonContext.Default.PoolSpecArray)).EnsureSuccessStatusCode();
            await ReadyAsync(http, claims);
            Console.WriteLine($"pool of {claims} filled from empty in {fill.Elapsed.TotalSeconds:0.0} s");
            // One claim first (the claim's query compiled, the connection warm), released and refilled, as a running server has.
            var warm = Stopwatch.StartNew();
            var first = await RequestAsync(http, repo);
            Console.WriteLine($"first claim after start: {warm.ElapsedMilliseconds} ms");
            await ReleaseAsync(http, first.Id);
            await ReadyAsync(http, claims);
            Console.WriteLine();
            Console.WriteLine("| claims from the warm pool | client p50 / p99 / max | server p50 / p99 | refill after (to all ready) |");
            Console.WriteLine("| --- | --- | --- | --- |");
            // Twenty at once twice: right after the last phase's twenty were released (their containers are being removed,
            // as on a busy server), and once those are gone (the claim path alone).
            foreach (var (concurrent, quiet) in ((bool, bool)[])[(false, true), (true, false), (true, true)])
            {
                if (quiet)
                {
                    await QuietAsync(podman, claims);
                }
                var client = new List<long>();
                var claimed = new List<BoxDto>();
                if (concurrent)
                {
                    var results = await Task.WhenAll(Enumerable.Range(0, claims).Select(async _ =>
                    {
                        var watch = Stopwatch.StartNew();
                        var box = await RequestAsync(http, repo);
                        return (watch.ElapsedMilliseconds, box);
                    }));
                    client.AddRange(results.Select(r => r.ElapsedMilliseconds));
                    claimed.AddRange(results.Select(r => r.box));
                }
                else
                {
                    for (var i = 0; i < claims; i++)
                    {
                        var watch = Stopwatch.StartNew();
                        var box = await RequestAsync(http, repo);
                        client.Add(watch.ElapsedMilliseconds);
                        claimed.Add(box);
                    }
                }
                var refill = Stopwatch.StartNew();
                await ReadyAsync(http, claims);
                var refilled = refill.Elapsed.TotalSeconds;
                var missed = claimed.Count(b => !b.FromPool);
                var measured = claimed.Where(b => b.ClaimMs is not null).Select(b => (long)Math.Ceiling(b.ClaimMs!.Value)).Order().ToArray();
                var sorted = client.Order().ToArray();
                Console.WriteLine($"| {claims} {(concurrent ? "at once" : "one at a time")}{(quiet ? "" : $", while {claims} released are removed")}{(missed > 0 ? $" ({missed} missed)" : "")} | " +
                    $"{Measure.Percentile(sorted, 0.5)} / {Measure.Percentile(sorted, 0.99)} / {sorted[^1]} ms | " +
                    $"{Measure.Percentile(measured, 0.5)} / {Measure.Percentile(measured, 0.99)} ms | {refilled:0.0} s |");
                foreach (var box in claimed)
                {
                    await ReleaseAsync(http, box.Id);
                }
            }
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    private static async Task<BoxDto> RequestAsync(HttpClient http, string repo, string? vmId = null)
    {
        using var reply = await http.PostAsJsonAsync("/api/boxes", new BoxRequest(repo, "main", VmId: vmId), CovibeJsonContext.Default.BoxRequest);
        if (reply.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.Accepted))
        {
            throw new InvalidOperationException($"POST /api/boxes: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
        }
        return (await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.BoxDto))!;
    }

    /// <summary>Waits until only the pool's <paramref name="standbys"/> have containers: released boxes are cleaned up.</summary>
    private static async Task QuietAsync(BenchPodman podman, int standbys)
    {
        using var docker = podman.Client();
        var labelled = new Docker.DotNet.Models.ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { ["covibe.box"] = true } },
        };
        var watch = Stopwatch.StartNew();
        while ((await docker.Containers.ListContainersAsync(labelled)).Count > standbys)
        {
            if (watch.Elapsed > TimeSpan.FromMinutes(2))
            {
                throw new TimeoutException("Released boxes' containers were not removed within 2 minutes.");
            }
            await Task.Delay(100);
        }
    }

    private static async Task ReleaseAsync(HttpClient http, string id) => (await http.DeleteAsync($"/api/boxes/{id}")).EnsureSuccessStatusCode();

    private static async Task ReadyAsync(HttpClient http, int ready)
    {
        while (true)
        {
            var pool = (await http.GetFromJsonAsync("/api/pools", CovibeJsonContext.Default.PoolListResponse))!.Pools.Single();
            if (pool.Ready >= ready)
            {
                return;
            }
            if (pool.Paused)
            {
                throw new InvalidOperationException($"The pool paused: {pool.PausedReason}");
            }
            await Task.Delay(100);
        }
    }
}
