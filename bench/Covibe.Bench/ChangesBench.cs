using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Covibe.Protocol;

/// <summary>
/// The team's repository benchmark (issue 25): (1) write to <c>agent_changes</c> latency, p50 and p99, with 10 agents on the
/// team's repository editing at once (a file written in each agent's work tree -> the hub's <c>agent_changes</c> naming it,
/// heard by a teammate's connection); (2) the cost of an agent's work tree (a clone borrowing the team's mirror) against
/// today's clone per agent from the repository's address, for a repository of about 100 MB: the time from spawn to the
/// agent running, and the disk each one takes; (3) merge to preview live: an agent's committed work merged into main
/// (<c>POST /api/agent/{id}/merge</c>, which pushes to the team's repository) until the preview that follows main says
/// it serves that commit (<c>preview_updated</c>), for a small static site. A real <c>covibe serve</c>; agents sandboxed.
///   dotnet run -c Release --project bench/Covibe.Bench -- changes [--agents 10] [--rounds 20] [--merges 5] [--megabytes 100]
/// </summary>
static class ChangesBench
{
    public static async Task RunAsync(string[] args)
    {
        var agents = Measure.Arg(args, "--agents", 10);
        var rounds = Measure.Arg(args, "--rounds", 20);
        var megabytes = Measure.Arg(args, "--megabytes", 100);
        var work = Path.Combine(Path.GetTempPath(), "covibe-changes-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        try
        {
            Console.WriteLine($"{agents} agents x {rounds} writes; a {megabytes} MB repository; {TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores");
            await LatencyAsync(work, agents, rounds);
            await MergeToLiveAsync(work, Measure.Arg(args, "--merges", 5));
            await TreeCostAsync(work, megabytes);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string[] Settings(string work) =>
    [
        "--Covibe:Repositories:AllowLocalRepositories=true",
        $"--Covibe:Isolation:SandboxReadOnlyPaths:0={Path.Combine(work, "repos")}",
        "--Covibe:Agents:Types:shell:Command:0=sh", "--Covibe:Agents:Types:shell:Command:1=-c",
        "--Covibe:Agents:Types:shell:Command:2=echo ready; while IFS= read -r line; do sh -c \"$line\"; done",
        "--Covibe:Agents:Types:idle:Command:0=sh", "--Covibe:Agents:Types:idle:Command:1=-c", "--Covibe:Agents:Types:idle:Command:2=sleep 600",
    ];

    private static async Task LatencyAsync(string work, int agents, int rounds)
    {
        var repo = Path.Combine(work, "repos", "small");
        Directory.CreateDirectory(repo);
        BenchGit.Run(repo, "init", "-q", "-b", "main");
        BenchGit.Commit(repo, new() { ["README.md"] = "bench\n" });
        var data = Path.Combine(work, "data-latency");
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(data, url, Settings(work));
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var token = await Measure.CreateTeamAsync(http);
            (await http.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(repo), CovibeJsonContext.Default.ConnectRepositoryRequest)).EnsureSuccessStatusCode();
            var heard = new ConcurrentDictionary<string, long>();
            using var hub = await Measure.JoinHubAsync(url, token, followAgents: false);
            _ = Measure.ListenAsync(hub, "agent_changes", (message, now) =>
            {
                var agent = message.GetProperty("agentId").GetString();
                foreach (var file in message.GetProperty("files").EnumerateArray())
                {
                    heard.TryAdd($"{agent}/{file.GetProperty("path").GetString()}", now);
                }
            });

            var ids = new List<string>();
            for (var i = 0; i < agents; i++)
            {
                using var spawned = await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest($"bench {i}", "shell"), CovibeJsonContext.Default.SpawnAgentRequest);
                ids.Add((await spawned.Content.ReadFromJsonAsync(CovibeJsonContext.Default.AgentDto))!.Id);
            }
            var trees = ids.ToDictionary(id => id, id => Directory.GetDirectories(Path.Combine(data, "workspaces")).Select(t => Path.Combine(t, id)).First());
            foreach (var id in ids)
            {
                // Followed once its tree is there and its first summary told.
                while (!File.Exists(Path.Combine(trees[id], "README.md")))
                {
                    await Task.Delay(50);
                }
            }
            await Task.Delay(TimeSpan.FromSeconds(3)); // every watch in place (the server looks for new trees each second)

            var latencies = new List<long>();
            for (var round = 0; round < rounds; round++)
            {
                var written = new Dictionary<string, long>();
                // All agents write at once.
                foreach (var id in ids)
                {
                    var path = $"round-{round}.txt";
                    written[$"{id}/{path}"] = Stopwatch.GetTimestamp();
                    await File.WriteAllTextAsync(Path.Combine(trees[id], path), $"round {round}\n");
                }
                var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 30;
                while (written.Keys.Any(k => !heard.ContainsKey(k)) && Stopwatch.GetTimestamp() < deadline)
                {
                    await Task.Delay(5);
                }
                foreach (var (key, at) in written)
                {
                    latencies.Add(heard.TryGetValue(key, out var told) ? (told - at) * 1000 / Stopwatch.Frequency : 30_000);
                }
            }
            var sorted = latencies.Order().ToArray();
            Console.WriteLine();
            Console.WriteLine("| write to agent_changes | p50 | p99 | max | samples |");
            Console.WriteLine("| --- | --- | --- | --- | --- |");
            Console.WriteLine($"| {agents} agents writing at once | {Measure.Percentile(sorted, 0.5)} ms | {Measure.Percentile(sorted, 0.99)} ms | {sorted[^1]} ms | {sorted.Length} |");
            foreach (var id in ids)
            {
                await http.DeleteAsync($"/api/agent/{id}");
            }
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }
    }

    private static async Task MergeToLiveAsync(string work, int merges)
    {
        // The team's repository: a bare one on this disk (a merge pushes to it, as to a forge).
        var source = Path.Combine(work, "repos", "site");
        Directory.CreateDirectory(source);
        BenchGit.Run(source, "init", "-q", "-b", "main");
        BenchGit.Commit(source, new() { ["index.html"] = "<h1>version 0</h1>" });
        var repo = Path.Combine(work, "repos", "site.git");
        BenchGit.Run(work, "clone", "-q", "--bare", source, repo);
        var data = Path.Combine(work, "data-merge");
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(data, url, [.. Settings(work), "--Covibe:Preview:AllowLocalRepositories=true", "--Covibe:Preview:CheckSeconds=0",
            "--Covibe:Preview:DrainSeconds=1"]);
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var token = await Measure.CreateTeamAsync(http);
            (await http.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(repo), CovibeJsonContext.Default.ConnectRepositoryRequest)).EnsureSuccessStatusCode();
            using var hub = await Measure.JoinHubAsync(url, token, followAgents: false);
            var live = new ConcurrentDictionary<string, long>();
            _ = Measure.ListenAsync(hub, "preview_updated", (message, now) => live.TryAdd(message.GetProperty("commit").GetString()!, now));
            (await http.PutAsJsonAsync("/api/preview", new SetPreviewRequest(null), CovibeJsonContext.Default.SetPreviewRequest)).EnsureSuccessStatusCode();
            await UntilAsync(() => live.ContainsKey(BenchGit.Run(repo, "rev-parse", "main").Trim()), "the preview's first version");

            var totals = new List<long>();
            var merging = new List<long>();
            for (var i = 1; i <= merges; i++)
            {
                using var spawned = await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest($"version {i}", "idle"), CovibeJsonContext.Default.SpawnAgentRequest);
                var id = (await spawned.Content.ReadFromJsonAsync(CovibeJsonContext.Default.AgentDto))!.Id;
                var tree = Directory.GetDirectories(Path.Combine(data, "workspaces")).Select(t => Path.Combine(t, id)).First();
                // Written once the agent runs: its tree is made before it starts.
                while ((await http.GetFromJsonAsync($"/api/agent/{id}", CovibeJsonContext.Default.AgentDto))!.Status == "starting")
                {
                    await Task.Delay(20);
                }
                await File.WriteAllTextAsync(Path.Combine(tree, "index.html"), $"<h1>version {i}</h1>");
                using (var committed = await http.PostAsync($"/api/agent/{id}/commit", null))
                {
                    if (!committed.IsSuccessStatusCode)
                    {
                        throw new InvalidOperationException($"The commit failed: {await committed.Content.ReadAsStringAsync()}");
                    }
                }
                var start = Stopwatch.GetTimestamp();
                using var merged = await http.PostAsync($"/api/agent/{id}/merge", null);
                merged.EnsureSuccessStatusCode();
                merging.Add((Stopwatch.GetTimestamp() - start) * 1000 / Stopwatch.Frequency);
                var commit = (await merged.Content.ReadFromJsonAsync(CovibeJsonContext.Default.AgentMergeResponse))!.Commit;
                await UntilAsync(() => live.ContainsKey(commit), $"version {i} live");
                totals.Add((live[commit] - start) * 1000 / Stopwatch.Frequency);
                await http.DeleteAsync($"/api/agent/{id}");
            }
            Console.WriteLine();
            Console.WriteLine("| merge to preview live (static site) | median | max | merges |");
            Console.WriteLine("| --- | --- | --- | --- |");
            Console.WriteLine($"| POST merge answered (fetch, merge, push) | {Measure.Percentile([.. merging.Order()], 0.5)} ms | {merging.Max()} ms | {merges} |");
            Console.WriteLine($"| merge to preview_updated | {Measure.Percentile([.. totals.Order()], 0.5)} ms | {totals.Max()} ms | {merges} |");
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }
    }

    private static async Task UntilAsync(Func<bool> done, string what)
    {
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 120;
        while (!done())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"Waited 2 minutes for {what}.");
            }
            await Task.Delay(5);
        }
    }

    private static async Task TreeCostAsync(string work, int megabytes)
    {
        // About `megabytes` of content that does not compress: 200 files of random bytes, hex-encoded text.
        var repo = Path.Combine(work, "repos", "large");
        Directory.CreateDirectory(repo);
        BenchGit.Run(repo, "init", "-q", "-b", "main");
        var files = new Dictionary<string, string>();
        var perFile = megabytes * 1024 * 1024 / 200 / 2;
        for (var i = 0; i < 200; i++)
        {
            files[$"data/file-{i:D3}.txt"] = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(perFile));
        }
        BenchGit.Commit(repo, files);
        // A copy the sandbox's user owns, for the clone from its address (git refuses a repository another user owns); the
        // team's repository stays the server's.
        var forAgents = Path.Combine(work, "repos", "large-for-agents.git");
        BenchGit.Run(work, "clone", "-q", "--bare", repo, forAgents);
        await Measure.RunAsync("chown", "-R", "10001:10001", forAgents);
        var repoSize = DirectoryMegabytes(Path.Combine(repo, ".git"));

        var data = Path.Combine(work, "data-cost");
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(data, url, Settings(work));
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            await Measure.CreateTeamAsync(http);
            var watch = Stopwatch.StartNew();
            (await http.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest(repo), CovibeJsonContext.Default.ConnectRepositoryRequest)).EnsureSuccessStatusCode();
            Console.WriteLine();
            Console.WriteLine($"A {repoSize:0} MB repository (.git); connecting it took {watch.ElapsedMilliseconds} ms (an ls-remote).");
            Console.WriteLine();
            Console.WriteLine("| an agent's files | spawn to running (1st / 2nd / 3rd) | disk per agent (its .git; the checkout on top) |");
            Console.WriteLine("| --- | --- | --- |");
            foreach (var (label, request) in new (string, Func<int, SpawnAgentRequest>)[]
            {
                ("work tree on the team's repository (borrows the mirror)", i => new SpawnAgentRequest($"tree {i}", "idle")),
                ("clone from the repository's address (today's repositoryUrl)", i => new SpawnAgentRequest($"clone {i}", "idle", RepositoryUrl: "file://" + forAgents, TeamRepository: false)),
            })
            {
                var times = new List<long>();
                string? lastId = null;
                for (var i = 0; i < 3; i++)
                {
                    var spawnWatch = Stopwatch.StartNew();
                    using var spawned = await http.PostAsJsonAsync("/api/agent/spawn", request(i), CovibeJsonContext.Default.SpawnAgentRequest);
                    spawned.EnsureSuccessStatusCode();
                    var agent = (await spawned.Content.ReadFromJsonAsync(CovibeJsonContext.Default.AgentDto))!;
                    while ((await http.GetFromJsonAsync($"/api/agent/{agent.Id}", CovibeJsonContext.Default.AgentDto))!.Status == "starting")
                    {
                        await Task.Delay(20);
                    }
                    times.Add(spawnWatch.ElapsedMilliseconds);
                    lastId = agent.Id;
                }
                var tree = Directory.GetDirectories(Path.Combine(data, "workspaces")).Select(t => Path.Combine(t, lastId!)).First();
                var gitSize = DirectoryMegabytes(Path.Combine(tree, ".git"));
                var total = DirectoryMegabytes(tree);
                Console.WriteLine($"| {label} | {string.Join(" / ", times)} ms | {gitSize:0.0} MB ({total - gitSize:0} MB of files) |");
            }
            Console.WriteLine();
            Console.WriteLine($"The team's mirror, once for all its agents: {DirectoryMegabytes(Path.Combine(data, "repositories")):0} MB.");
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }
    }

    private static double DirectoryMegabytes(string path) =>
        Directory.Exists(path) ? new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) / 1024.0 / 1024.0 : 0;
}
