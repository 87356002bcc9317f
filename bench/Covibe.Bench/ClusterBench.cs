using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

/// <summary>
/// Several nodes (issue 15): the fan-out load of FanOutBench (one agent, the fake claude, writing stamped lines at
/// --rate; N subscribers) on one node, then with the subscribers spread over two nodes on one PostgreSQL and one
/// Redis (the agent followed by node A; node B's subscribers get its output through Redis), then the same with node A
/// killed (-9) halfway: its subscribers reconnect to node B and resume from their positions, and node B takes the
/// agent over; then a rolling restart (SIGTERM, start, healthy: node A at a third, node B at two thirds) with every
/// subscriber reconnecting to whichever node answers; with --upgrade-from REV, a rolling upgrade: both nodes start as the
/// build of commit REV (the previous release) on a database it made, and are replaced one at a time by this build, which
/// migrates the shared database while the old node still serves. Reports latency, bytes lost, each node's CPU, and the
/// longest stall each subscriber saw.
///   cluster [--subscribers 100] [--seconds 20] [--rate 1048576] [--lease 10] [--upgrade-from REV] [--only TEXT]
/// </summary>
static class ClusterBench
{
    private const string JwtSecret = "bench-secret-bench-secret-bench-secret-0123456789";
    private const string EncryptionKey = "bench-encryption-key-0123456789-abcdefghijklmnop";

    public static async Task RunAsync(string[] args)
    {
        var subscribers = Measure.Arg(args, "--subscribers", 100);
        var seconds = Measure.Arg(args, "--seconds", 20);
        var rate = Measure.Arg(args, "--rate", 1024 * 1024);
        var lease = Measure.Arg(args, "--lease", 10);
        var from = args.SkipWhile(a => a != "--upgrade-from").Skip(1).FirstOrDefault();
        var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault(); // e.g. "upgrade": the runs whose name has it
        var work = Directory.CreateTempSubdirectory("covibe-cluster-bench-").FullName;
        try
        {
            var previous = from is null ? null : await BuildAsync(from, Path.Combine(work, "previous"));
            // Beside the work directory, not in it: that one is its owner's only, and PostgreSQL runs as postgres.
            await using var postgres = await BenchPostgres.StartAsync(work + "-pg");
            await using var redis = await BenchRedis.StartAsync(Path.Combine(work, "redis"));
            var rows = new List<string>();
            foreach (var (name, nodes, trouble) in new[]
            {
                ("one node", 1, Trouble.None), ("two nodes", 2, Trouble.None), ("two nodes, A killed (-9) halfway", 2, Trouble.Kill),
                ("two nodes, rolling restart (A at 1/3, B at 2/3)", 2, Trouble.RollingRestart),
                ($"two nodes, rolling upgrade from {from} (A at 1/3, B at 2/3)", 2, Trouble.RollingUpgrade),
            })
            {
                if ((trouble == Trouble.RollingUpgrade && previous is null) || (only is not null && !name.Contains(only, StringComparison.Ordinal)))
                {
                    continue;
                }
                Console.Error.WriteLine($"{name}: {subscribers} subscribers, {rate / 1048576.0:0.##} MiB/s, {seconds} s");
                var database = await postgres.CreateDatabaseAsync();
                rows.Add(await RunAsync(name, Path.Combine(work, $"run{rows.Count}"), database, redis.Url, nodes, trouble, subscribers, seconds, rate, lease, previous));
            }
            Console.WriteLine($"{subscribers} subscribers, {rate / 1048576.0:0.##} MiB/s for {seconds} s, agent leases {lease} s, {TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores");
            Console.WriteLine();
            Console.WriteLine("| run | p50 / p99 / max (node A's subscribers) | p50 / p99 / max (node B's) | lost (bad streams) | CPU node A / node B | longest stall per subscriber (p50 / max) |");
            Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
            rows.ForEach(Console.WriteLine);
        }
        finally
        {
            if (from is not null)
            {
                await Measure.RunAsync("git", "-C", AppContext.BaseDirectory, "worktree", "remove", "--force", Path.Combine(work, "previous", "src"));
            }
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Builds the server of commit <paramref name="rev"/> (a worktree of this repository) and answers its covibe.dll.</summary>
    private static async Task<string> BuildAsync(string rev, string directory)
    {
        Console.Error.WriteLine($"building {rev} (the previous release) ...");
        var tree = Path.Combine(directory, "src");
        if (await Measure.RunAsync("git", "-C", AppContext.BaseDirectory, "worktree", "add", "--detach", tree, rev) is null)
        {
            throw new InvalidOperationException($"git worktree add {rev} failed: is it a commit of this repository?");
        }
        var output = Path.Combine(directory, "out");
        if (await Measure.RunAsync("dotnet", "build", Path.Combine(tree, "src", "Covibe.Cli"), "-c", "Release", "-o", output, "-v", "quiet", "-nologo") is null)
        {
            throw new InvalidOperationException($"building {rev} failed");
        }
        // The fake claude beside it: the sandbox shows agents the server's own directory, not the benchmark's.
        var fake = Path.Combine(output, "fake-claude");
        Directory.CreateDirectory(fake);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fake-claude", "claude"), Path.Combine(fake, "claude"));
        return Path.Combine(output, "covibe.dll");
    }

    private enum Trouble { None, Kill, RollingRestart, RollingUpgrade }

    private static async Task<string> RunAsync(string name, string work, string database, string redisUrl, int nodeCount, Trouble trouble,
        int count, int seconds, int rate, int lease, string? previous)
    {
        var nodes = new (Uri Url, Process Process, string Data)[nodeCount];
        var current = Path.Combine(AppContext.BaseDirectory, "covibe.dll");
        async Task StartAsync(int i, Uri url, string? dll = null)
        {
            var data = Path.Combine(work, $"node{i}");
            // A rolling upgrade starts every node as the previous release; each restart brings this build.
            dll ??= trouble == Trouble.RollingUpgrade ? previous! : current;
            var fakeClaude = Path.Combine(Path.GetDirectoryName(dll)!, "fake-claude", "claude");
            var process = Measure.StartServerFrom(dll, data, url.ToString().TrimEnd('/'),
                $"--Covibe:Database:ConnectionString={database}", $"--Covibe:Cluster:RedisUrl={redisUrl}",
                $"--Covibe:Auth:JwtSecret={JwtSecret}", $"--Covibe:Secrets:EncryptionKey={EncryptionKey}",
                $"--Covibe:Agents:LeaseSeconds={lease}",
                $"--Covibe:Agents:Types:claude:Environment:PATH={Path.GetDirectoryName(fakeClaude)}:{Environment.GetEnvironmentVariable("PATH")}",
                // Output fan-out, not approvals: the agent asks nothing.
                "--Covibe:Agents:Permissions:Mode=bypass", "--Covibe:Agents:Permissions:AllowBypass=true",
                "--Covibe:Hub:MaxConnectionsPerMember=10000", "--Covibe:Auth:AttemptsPerMinute=100000");
            await Measure.WaitHealthyAsync(url.ToString().TrimEnd('/')); // one at a time: the first migrates the database
            nodes[i] = (url, process, data);
        }
        try
        {
            for (var i = 0; i < nodeCount; i++)
            {
                await StartAsync(i, new Uri($"http://127.0.0.1:{Measure.FreePort()}"));
            }
            using var http = new HttpClient { BaseAddress = nodes[0].Url, Timeout = TimeSpan.FromMinutes(2) };
            var token = await Measure.CreateTeamAsync(http);

            // Subscribers alternate between the nodes; each follows the agent from its first byte.
            var clients = new List<(Subscriber Client, int Node)>();
            for (var i = 0; i < count; i++)
            {
                clients.Add((await Subscriber.ConnectAsync(nodes[i % nodeCount].Url, token), i % nodeCount));
            }
            var cpuBefore = nodes.Select(n => Measure.CpuSeconds(n.Process.Id)).ToArray();
            var lines = (int)((long)rate * seconds / 420);
            using var reply = await http.PostAsJsonAsync("/api/agent/spawn", new { task = $"bench [[stamp]] [[rate={rate}]] [[lines={lines}]]", agentType = "claude" });
            reply.EnsureSuccessStatusCode();
            var agentId = (await reply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;

            var wall = Stopwatch.StartNew();
            var urls = nodes.Select(n => n.Url).ToArray();
            var watches = clients.Select(c => WatchAsync(c.Client, c.Node, agentId, token, urls)).ToList();
            // Each node's CPU as a share of one core while it ran (node A's until it was killed; none across restarts).
            var cpu = new double?[nodeCount];
            if (trouble == Trouble.Kill)
            {
                await Task.Delay(TimeSpan.FromSeconds(seconds / 2.0));
                cpu[0] = (Measure.CpuSeconds(nodes[0].Process.Id) - cpuBefore[0]) / wall.Elapsed.TotalSeconds;
                nodes[0].Process.Kill();
                await nodes[0].Process.WaitForExitAsync();
            }
            else if (trouble is Trouble.RollingRestart or Trouble.RollingUpgrade)
            {
                // As systemd restarts one unit after another: SIGTERM, wait until it has stopped, start, wait until healthy.
                for (var i = 0; i < nodeCount; i++)
                {
                    await Task.Delay(TimeSpan.FromSeconds(seconds / (nodeCount + 1.0)));
                    using (var term = Process.Start("kill", ["-TERM", nodes[i].Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                    {
                        await term.WaitForExitAsync();
                    }
                    await nodes[i].Process.WaitForExitAsync();
                    await StartAsync(i, nodes[i].Url, current);
                }
            }
            var results = await Task.WhenAll(watches);
            for (var i = 0; i < nodeCount; i++)
            {
                if (trouble == Trouble.None || (trouble == Trouble.Kill && i > 0))
                {
                    cpu[i] = (Measure.CpuSeconds(nodes[i].Process.Id) - cpuBefore[i]) / wall.Elapsed.TotalSeconds;
                }
            }
            var log = await File.ReadAllBytesAsync(Path.Combine(nodes[0].Data, "agents", agentId, "output.log"));
            if (log.Length < lines * 100L)
            {
                throw new InvalidOperationException($"The agent did not write its output ({log.Length} bytes): {System.Text.Encoding.UTF8.GetString(log[..Math.Min(log.Length, 500)])}");
            }
            foreach (var c in clients)
            {
                await c.Client.DisposeAsync();
            }

            string Latency(int node)
            {
                var h = Histogram.Merge(results.Where(r => r.Node == node).Select(r => r.Latency));
                return h.Count == 0 ? "-" : $"{h.Percentile(0.5)} / {h.Percentile(0.99)} / {h.Max} ms";
            }
            var lost = results.Sum(r => Math.Max(0, log.Length - r.Next));
            var bad = results.Count(r => !r.Contiguous || r.Next != log.Length);
            var stalls = results.Select(r => r.LongestStall.TotalMilliseconds).Order().ToArray();
            var stall = $"{stalls[stalls.Length / 2]:0} / {stalls[^1]:0} ms";
            var cpuText = string.Join(" / ", cpu.Select((c, i) => c is { } share ? $"{share * 100:0}%{(trouble == Trouble.Kill && i == 0 ? " (until killed)" : "")}" : "-"));
            var reconnects = results.Sum(r => r.Reconnects);
            return $"| {name} | {Latency(0)} | {(nodeCount > 1 ? Latency(1) : "-")} | {lost} ({bad}) | {cpuText} | {stall}{(reconnects > 0 ? $" ({reconnects} reconnects)" : "")} |";
        }
        finally
        {
            foreach (var (_, process, _) in nodes.Where(n => n.Process is not null))
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }
        }
    }

    private sealed record Watched(int Node, long Next, bool Contiguous, Histogram Latency, TimeSpan LongestStall, int Reconnects);

    /// <summary>
    /// One subscriber to the end of the agent's output. When its node goes (killed, restarting), it connects again, as a
    /// client behind a load balancer would, to the next node that answers, and resumes where it was.
    /// </summary>
    private static async Task<Watched> WatchAsync(Subscriber client, int node, string agentId, string token, Uri[] nodes)
    {
        var latency = new Histogram();
        long next = 0;
        Stopwatch? since = null; // from the first byte on: the agent's own start is not a stall
        var longest = TimeSpan.Zero;
        var contiguous = true;
        void Progress(long position)
        {
            next = position;
            if (since is not null && since.Elapsed > longest)
            {
                longest = since.Elapsed;
            }
            since = Stopwatch.StartNew();
        }
        var reconnects = 0;
        var at = node;
        var current = client;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                if (current is null)
                {
                    current = await Subscriber.ConnectAsync(nodes[at], token, follow: false);
                    await current.SubscribeAsync(agentId, next);
                    reconnects++;
                }
                var received = await current.ReceiveToEndAsync(agentId, next, latency, Progress);
                if (!ReferenceEquals(current, client))
                {
                    await current.DisposeAsync();
                }
                contiguous &= received.Contiguous;
                return new Watched(node, received.Bytes, contiguous, latency, longest, reconnects);
            }
            catch (Exception e) when (attempt < 200 && e is InvalidOperationException or System.Net.WebSockets.WebSocketException or HttpRequestException)
            {
                if (!ReferenceEquals(current, client) && current is not null)
                {
                    await current.DisposeAsync();
                }
                current = null;
                at = (at + 1) % nodes.Length;
                await Task.Delay(100);
            }
        }
    }
}

/// <summary>A PostgreSQL server for a benchmark: <c>initdb</c> into the work directory (as <c>postgres</c> when root), on a free loopback port.</summary>
sealed class BenchPostgres : IAsyncDisposable
{
    private readonly string _bin;
    private readonly string _directory;
    private int _databases;

    private BenchPostgres(string bin, string directory, int port) => (_bin, _directory, Port) = (bin, directory, port);

    public int Port { get; }

    public static async Task<BenchPostgres> StartAsync(string directory)
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin")).First(d => File.Exists(Path.Combine(d, "initdb")));
        Directory.CreateDirectory(directory);
        if (Environment.UserName == "root")
        {
            await Measure.RunAsync("chown", "postgres:postgres", directory);
        }
        var server = new BenchPostgres(bin, directory, Measure.FreePort());
        await server.RunAsync("initdb", "-D", Path.Combine(directory, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync");
        await server.RunAsync("pg_ctl", "-D", Path.Combine(directory, "data"), "-l", Path.Combine(directory, "log"), "-w", "-t", "60", "start",
            "-o", $"-p {server.Port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off " +
            // Two nodes' pools (Npgsql's 100 each) under a restart's reconnect storm outgrow PostgreSQL's default 100 (docs/scaling.md).
            "-c max_connections=300");
        return server;
    }

    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"bench{Interlocked.Increment(ref _databases)}";
        await RunAsync("createdb", "-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", name);
        return $"Host=127.0.0.1;Port={Port};Username=postgres;Database={name}";
    }

    private async Task RunAsync(string tool, params string[] args)
    {
        var asPostgres = Environment.UserName == "root";
        var output = asPostgres
            ? await Measure.RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. args])
            : await Measure.RunAsync(Path.Combine(_bin, tool), args);
        if (output is null)
        {
            throw new InvalidOperationException($"{tool} failed");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await RunAsync("pg_ctl", "-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop");
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>A redis-server for a benchmark, on a free loopback port, no persistence.</summary>
sealed class BenchRedis(Process process, int port) : IAsyncDisposable
{
    public string Url => $"redis://127.0.0.1:{port}";

    public static async Task<BenchRedis> StartAsync(string directory)
    {
        Directory.CreateDirectory(directory);
        var port = Measure.FreePort();
        var process = Process.Start(new ProcessStartInfo("redis-server", ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", directory]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        for (var i = 0; i < 100 && await Measure.RunAsync("redis-cli", "-p", port.ToString(CultureInfo.InvariantCulture), "ping") is null; i++)
        {
            await Task.Delay(100);
        }
        return new BenchRedis(process, port);
    }

    public async ValueTask DisposeAsync()
    {
        process.Kill();
        await process.WaitForExitAsync();
        process.Dispose();
    }
}
