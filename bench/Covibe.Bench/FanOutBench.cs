using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

/// <summary>
/// Agent output fan-out (issues 3 and 11): one agent (the fake claude) writes stamped stream-json
/// lines at a fixed rate; N WebSocket subscribers on loopback receive them. For each server it
/// reports latency from the agent's write (a stamp inside each line) to each subscriber's receipt,
/// bytes lost and positions, bytes on the wire, the server process's CPU (per delivered MiB) and
/// peak memory (with its marginal part: the peak less the RSS of the server started and idle, before anyone joins). <c>compare</c> runs the same load, with the same client, against Covibe, a bare
/// Kestrel broadcaster (BareKestrel.cs) and the Node baselines in bench/node (a <c>ws</c> broadcaster,
/// unbatched and with 15 ms batches, and seed 001's Express + Socket.IO 4.8), one after another. <c>covibe-socketio</c> is
/// Covibe with its subscribers on its Socket.IO endpoint (Engine.IO over a WebSocket, as the Node Socket.IO server's are).
/// With <c>--agents N</c>, N agents of the team write at once, each at <c>--rate</c> (every subscriber follows them all).
///   fanout  [--subscribers 100] [--agents 1] [--seconds 20] [--rate 1048576] [--timeline]
///   compare [--subscribers 100] [--agents 1] [--seconds 20] [--rate 1048576] [--warmup 2] [--servers covibe,covibe-socketio,bare,ws,ws-batched,ws-4ms,socketio] [--timeline] [--no-pin]
/// </summary>
static class FanOutBench
{
    public static async Task RunAsync(string[] args, bool compare)
    {
        var subscribers = Measure.Arg(args, "--subscribers", 100);
        var seconds = Measure.Arg(args, "--seconds", 20);
        var rate = Measure.Arg(args, "--rate", 1024 * 1024);
        var agents = Measure.Arg(args, "--agents", 1);
        Subscriber.Deflate = args.Contains("--deflate");
        Pinning.Apply(!args.Contains("--no-pin"));
        var names = Value(args, "--servers")?.Split(',') ?? (compare ? ["covibe", "covibe-socketio", "bare", "ws", "ws-batched", "socketio"] : ["covibe"]);
        var results = new List<Result>();
        foreach (var name in names)
        {
            Console.Error.WriteLine($"{name}: {subscribers} subscribers, {agents} x {rate / 1048576.0:0.##} MiB/s, {seconds} s");
            await using var target = Target.Create(name);
            results.Add(await RunAsync(target, subscribers, agents, seconds, rate, Measure.Arg(args, "--warmup", 2), args.Contains("--timeline")));
        }

        Console.WriteLine($"{subscribers} subscribers, {(agents > 1 ? $"{agents} agents at " : "")}{rate / 1048576.0:0.##} MiB/s{(agents > 1 ? " each" : "")} for {seconds} s, {TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine($"Server pinned: {(Pinning.Server is { } core ? $"core {core} (taskset), the clients on the others" : "no")}");
        Console.WriteLine();
        Console.WriteLine("| server | p50 / p99 / max | lost (bad streams) | wire bytes per byte | frames sent per s | server CPU (user + system) | CPU per delivered MiB | CPU per frame | peak RSS (marginal) | cold p50 / p99 | worst second's p99 | late joiner |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in results)
        {
            Console.WriteLine($"| {r.Name} | {r.Latency.Percentile(0.5)} / {r.Latency.Percentile(0.99)} / {r.Latency.Max} ms | {r.Lost} ({r.Corrupt}) | {r.WirePerByte:0.00} | {r.FramesPerSecond:N0} " +
                $"| {r.CpuSeconds / r.Seconds * 100:0}% ({r.Cpu.User / r.Seconds * 100:0} + {r.Cpu.System / r.Seconds * 100:0}) | {r.CpuPerMiB:0.00} ms | {r.CpuSeconds * 1e6 / (r.FramesPerSecond * r.Seconds):0.0} µs | {r.PeakRss:0} MiB ({r.PeakRss - r.IdleRss:0}) " +
                $"| {r.Cold.Percentile(0.5)} / {r.Cold.Percentile(0.99)} ms | {r.WorstSecond ?? "-"} | {r.Replay ?? "-"} |");
        }
        if (results.Find(r => r.Name == "covibe") is { } covibe)
        {
            Console.WriteLine();
            foreach (var other in results.Where(r => r != covibe))
            {
                Console.WriteLine($"covibe / {other.Name}: CPU per MiB {covibe.CpuPerMiB / other.CpuPerMiB:0.00}x, p99 {covibe.Latency.Percentile(0.99)} vs {other.Latency.Percentile(0.99)} ms, peak RSS {covibe.PeakRss / other.PeakRss:0.00}x, marginal peak {(covibe.PeakRss - covibe.IdleRss) / (other.PeakRss - other.IdleRss):0.00}x");
            }
        }
        if (results.Find(r => r.Name == "covibe-socketio") is { } endpoint)
        {
            foreach (var other in results.Where(r => r.Name is "covibe" or "socketio"))
            {
                Console.WriteLine($"covibe-socketio / {other.Name}: CPU per MiB {endpoint.CpuPerMiB / other.CpuPerMiB:0.00}x, p99 {endpoint.Latency.Percentile(0.99)} vs {other.Latency.Percentile(0.99)} ms, peak RSS {endpoint.PeakRss / other.PeakRss:0.00}x");
            }
        }
    }

    private static async Task<Result> RunAsync(Target target, int count, int agents, int seconds, int rate, int warmupSeconds, bool timeline)
    {
        await target.StartAsync();
        using var http = new HttpClient { BaseAddress = target.Url, Timeout = TimeSpan.FromMinutes(2) };
        await target.PrepareAsync(http);
        // The server started and idle, before anyone joins: the peak's marginal part is measured from here.
        var idleRss = Measure.RssMegabytes(target.Process.Id);
        // Subscribers join first (following the team's agents, seed 001's join_team), so each is
        // attached before the agent's first byte: every byte is measured live.
        var clients = new List<Subscriber>();
        for (var i = 0; i < count; i++)
        {
            clients.Add(await Subscriber.ConnectAsync(target));
        }
        // Lines are about 420 bytes with the stamp. A first agent (2 s unless --warmup says) warms the
        // server (JIT, pools); its numbers are reported as the cold start.
        var (_, warmup, _) = await RunAgentsAsync(target, http, clients, agents, rate, (int)((long)rate * warmupSeconds / 420));
        var cold = Histogram.Merge(warmup.Select(w => w[0].Latency));
        // Per second of the agent's writing, every subscriber's latencies together (--timeline): the worst second shows spikes.
        Subscriber.Timeline.Clear();
        foreach (var c in clients)
        {
            c.RecordTimeline = timeline;
        }

        var pid = target.Process.Id;
        var cpuBefore = Measure.Cpu(pid);
        var wall = Stopwatch.StartNew();
        var (agentIds, results, logs) = await RunAgentsAsync(target, http, clients, agents, rate, (int)((long)rate * seconds / 420));
        var agentId = agentIds[0];
        var log = logs[0];
        wall.Stop();
        var cpuTime = Measure.Cpu(pid) - cpuBefore;
        var cpu = cpuTime.Total;
        var peakRss = Measure.PeakRssMegabytes(pid);

        string? replay = null;
        if (target.Replays)
        {
            // A late joiner replays everything from position 0: five of them one after another, each on a connection made
            // beforehand, timed from its subscription to the last byte; the median (one replay alone spread widely).
            var times = new List<long>();
            var whole = true;
            long bytes = 0;
            for (var i = 0; i < 5; i++)
            {
                await using var late = await Subscriber.ConnectAsync(target);
                var catchUp = Stopwatch.StartNew();
                await late.SubscribeAsync(agentId);
                var all = await late.ReceiveToEndAsync(agentId);
                times.Add(catchUp.ElapsedMilliseconds);
                bytes = all.Bytes;
                whole &= all.Bytes == log.Length && all.Contiguous;
            }
            times.Sort();
            replay = $"{bytes / 1048576.0:0.0} MiB in {times[2]} ms (median of 5: {string.Join("/", times)}){(whole ? "" : " INCOMPLETE")}";
        }
        string? worstSecond = null;
        if (timeline)
        {
            var perSecond = Subscriber.Timeline.OrderBy(t => t.Key).ToList();
            foreach (var (second, h) in perSecond)
            {
                Console.Error.WriteLine($"second {second}: p50 {h.Percentile(0.5)} p99 {h.Percentile(0.99)} max {h.Max} ({h.Count} samples)");
            }
            // The first and last seconds are partial: the worst of the whole ones.
            var whole = perSecond.Count > 2 ? perSecond[1..^1] : perSecond;
            if (whole.Count > 0)
            {
                var worst = whole.MaxBy(t => t.Value.Percentile(0.99));
                worstSecond = $"{worst.Value.Percentile(0.99)} ms (second {worst.Key - perSecond[0].Key} of {perSecond.Count}); {whole.Count(t => t.Value.Percentile(0.99) > 50)} seconds over 50 ms";
            }
        }
        foreach (var c in clients)
        {
            await c.DisposeAsync();
        }
        var written = logs.Sum(l => (long)l.Length);
        var delivered = (double)written * count / 1048576;
        // results[client][agent]: each client's streams, in the order of the agents.
        var streams = results.SelectMany(r => r.Select((received, i) => (Received: received, Log: logs[i].Length))).ToList();
        return new Result(target.Name, Histogram.Merge(results.Select(r => r[0].Latency)), cold,
            streams.Sum(s => Math.Max(0, s.Log - s.Received.Bytes)), streams.Count(s => !s.Received.Contiguous || s.Received.Bytes != s.Log),
            (double)streams.Sum(s => s.Received.WireBytes) / count / written, streams.Sum(s => s.Received.Frames) / wall.Elapsed.TotalSeconds, cpu, wall.Elapsed.TotalSeconds, cpu * 1000 / delivered, peakRss, replay,
            cpuTime, worstSecond, idleRss);
    }

    /// <summary><paramref name="agents"/> agents writing at once; what each client received of each, and each agent's log.</summary>
    private static async Task<(string[] Ids, Subscriber.Received[][] Results, byte[][] Logs)> RunAgentsAsync(Target target, HttpClient http, List<Subscriber> clients, int agents, int rate, int lines)
    {
        var ids = new string[agents];
        for (var i = 0; i < agents; i++)
        {
            using var reply = await http.PostAsJsonAsync("/api/agent/spawn", new { task = $"bench [[stamp]] [[rate={rate}]] [[lines={lines}]]", agentType = "claude" });
            reply.EnsureSuccessStatusCode();
            ids[i] = (await reply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        }
        var results = await Task.WhenAll(clients.Select(c => c.ReceiveToEndAsync(ids)));
        return (ids, results, await Task.WhenAll(ids.Select(id => File.ReadAllBytesAsync(target.LogPath(id)))));
    }

    private static string? Value(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private sealed record Result(string Name, Histogram Latency, Histogram Cold, long Lost, int Corrupt, double WirePerByte, double FramesPerSecond,
        double CpuSeconds, double Seconds, double CpuPerMiB, double PeakRss, string? Replay, CpuTime Cpu, string? WorstSecond, double IdleRss);
}

/// <summary>
/// Latencies counted in buckets of 0.1 ms below 100 ms and of 1 ms above (up to 60 s): a subscriber sees millions, and
/// the agent stamps its lines in microseconds.
/// </summary>
sealed class Histogram
{
    private const int Fine = 1000; // 0.1 ms buckets: [0, 100 ms)
    private readonly long[] _counts = new long[Fine + 60_000];
    private long _maxMicroseconds;

    /// <summary>The largest latency seen, in milliseconds.</summary>
    public double Max => Math.Round(_maxMicroseconds / 1000.0, 1);

    public long Count { get; private set; }

    /// <summary>Adds a latency in microseconds.</summary>
    public void Add(long microseconds)
    {
        microseconds = Math.Max(0, microseconds);
        _counts[Bucket(microseconds)]++;
        Count++;
        _maxMicroseconds = Math.Max(_maxMicroseconds, microseconds);
    }

    /// <summary>The latency at <paramref name="p"/> in milliseconds (to 0.1 ms below 100 ms, whole ms above).</summary>
    public double Percentile(double p)
    {
        var rank = (long)Math.Ceiling(p * Count);
        long seen = 0;
        for (var bucket = 0; bucket < _counts.Length; bucket++)
        {
            seen += _counts[bucket];
            if (seen >= rank && seen > 0)
            {
                return bucket < Fine ? Math.Round((bucket + 1) / 10.0, 1) : bucket - Fine + 100;
            }
        }
        return 0;
    }

    public static Histogram Merge(IEnumerable<Histogram> parts)
    {
        var all = new Histogram();
        foreach (var h in parts)
        {
            for (var bucket = 0; bucket < all._counts.Length; bucket++)
            {
                all._counts[bucket] += h._counts[bucket];
            }
            all.Count += h.Count;
            all._maxMicroseconds = Math.Max(all._maxMicroseconds, h._maxMicroseconds);
        }
        return all;
    }

    private int Bucket(long microseconds) => microseconds < 100_000
        ? (int)(microseconds / 100)
        : (int)Math.Min(_counts.Length - 1, Fine + (microseconds - 100_000) / 1000);
}

/// <summary>A server under test: Covibe itself, the bare Kestrel broadcaster, or a Node baseline.</summary>
abstract class Target : IAsyncDisposable
{
    protected readonly string Data = Path.Combine(Path.GetTempPath(), "covibe-fanout-" + Guid.NewGuid().ToString("N")[..8]);
    protected static readonly string FakeClaude = Path.Combine(AppContext.BaseDirectory, "fake-claude", "claude");

    protected Target(string name)
    {
        Name = name;
        Url = new Uri($"http://127.0.0.1:{Measure.FreePort()}");
    }

    public string Name { get; }
    public Uri Url { get; }
    public Process Process { get; protected set; } = null!;
    public string? Token { get; protected set; }
    public virtual bool SocketIo => false;
    public virtual bool Replays => false;

    public string LogPath(string agentId) => Path.Combine(Data, "agents", agentId, "output.log");

    public static Target Create(string name) => name switch
    {
        "covibe" => new CovibeTarget(name, socketIo: false),
        "covibe-socketio" => new CovibeTarget(name, socketIo: true),
        "bare" => new Spawned(name, "dotnet", [Path.Combine(AppContext.BaseDirectory, "Covibe.Bench.dll"), "bare-server"]),
        "ws" => new Spawned(name, "node", [Path.Combine(NodeDirectory(), "ws-server.js")]),
        "ws-batched" => new Spawned(name, "node", [Path.Combine(NodeDirectory(), "ws-server.js"), "--batch-ms", "15"]),
        // Covibe's own window: what batching alone buys, beside what Covibe spends per frame.
        "ws-4ms" => new Spawned(name, "node", [Path.Combine(NodeDirectory(), "ws-server.js"), "--batch-ms", "4"]),
        "socketio" => new Spawned(name, "node", [Path.Combine(NodeDirectory(), "socketio-server.js")], socketIo: true),
        _ => throw new ArgumentException($"Unknown server '{name}': covibe, covibe-socketio, bare, ws, ws-batched, ws-4ms or socketio."),
    };

    public abstract Task StartAsync();

    public virtual Task PrepareAsync(HttpClient http) => Measure.WaitHealthyAsync(Url.ToString().TrimEnd('/'));

    public async ValueTask DisposeAsync()
    {
        if (Process is { HasExited: false })
        {
            Process.Kill(entireProcessTree: true);
            await Process.WaitForExitAsync();
        }
        Process?.Dispose();
        if (Directory.Exists(Data))
        {
            Directory.Delete(Data, recursive: true);
        }
    }

    /// <summary>bench/node, with its packages installed by bench/run (npm ci).</summary>
    private static string NodeDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var node = Path.Combine(dir.FullName, "bench", "node");
            if (Directory.Exists(Path.Combine(node, "node_modules")))
            {
                return node;
            }
        }
        throw new InvalidOperationException("bench/node/node_modules is missing: run the benchmark with bench/run, which installs the Node baselines (npm ci).");
    }

    private sealed class CovibeTarget(string name, bool socketIo) : Target(name)
    {
        public override bool SocketIo => socketIo;

        /// <summary>More settings for the server under test, from COVIBE_BENCH_SETTINGS (space-separated --Key=Value).</summary>
        private static readonly string[] Extra = (Environment.GetEnvironmentVariable("COVIBE_BENCH_SETTINGS") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);

        public override bool Replays => true;

        /// <summary>Covibe needs a team and its owner's token.</summary>
        public override async Task PrepareAsync(HttpClient http)
        {
            await base.PrepareAsync(http);
            Token = await Measure.CreateTeamAsync(http);
        }

        public override Task StartAsync()
        {
            Process = Measure.StartServer(Data, Url.ToString().TrimEnd('/'), [
                $"--Covibe:Agents:Types:claude:Environment:PATH={Path.GetDirectoryName(FakeClaude)}:{Environment.GetEnvironmentVariable("PATH")}",
                // Output fan-out, not approvals: the agent asks nothing.
                "--Covibe:Agents:Permissions:Mode=bypass", "--Covibe:Agents:Permissions:AllowBypass=true",
                // All subscribers are one member here: lift the per-member connection cap (20 by default).
                "--Covibe:Hub:MaxConnectionsPerMember=10000", "--Covibe:Auth:AttemptsPerMinute=100000", .. Extra]);
            return Task.CompletedTask;
        }
    }

    private sealed class Spawned(string name, string program, string[] arguments, bool socketIo = false) : Target(name)
    {
        public override bool SocketIo => socketIo;

        public override Task StartAsync()
        {
            var (pinned, prefix) = Pinning.Wrap(program);
            var info = new ProcessStartInfo(pinned) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in (string[])[.. prefix, .. arguments, "--port", Url.Port.ToString(CultureInfo.InvariantCulture), "--claude", FakeClaude, "--data", Data])
            {
                info.ArgumentList.Add(a);
            }
            Directory.CreateDirectory(Data);
            Process = Process.Start(info)!;
            Process.OutputDataReceived += (_, _) => { };
            Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine($"{Name}: {e.Data}"); } };
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
            return Task.CompletedTask;
        }
    }
}

/// <summary>
/// One WebSocket client: joins the team (seed 001's join_team; over Socket.IO's Engine.IO framing for
/// the Socket.IO server), checks that each agent_output starts where the last ended, and counts the
/// latency of every stamp it receives.
/// </summary>
sealed class Subscriber : IAsyncDisposable
{
    private static readonly byte[] Stamp = "sent="u8.ToArray();
    private readonly ClientWebSocket _socket;
    private readonly bool _socketIo;
    private byte[] _buffer = new byte[256 * 1024];

    private Subscriber(ClientWebSocket socket, bool socketIo)
    {
        _socket = socket;
        _socketIo = socketIo;
    }

    /// <summary>Offer permessage-deflate (--deflate), as browsers do.</summary>
    public static bool Deflate { get; set; }

    public bool RecordTimeline { get; set; }
    public static System.Collections.Concurrent.ConcurrentDictionary<long, Histogram> Timeline { get; } = new();

    public sealed record Received(long Bytes, bool Contiguous, Histogram Latency, long WireBytes, long Frames);

    public static Task<Subscriber> ConnectAsync(Target target) => ConnectAsync(target.Url, target.Token, target.SocketIo);

    /// <summary>Joins the team; with <paramref name="follow"/>, following every agent's output from its start (else only what it subscribes to).</summary>
    public static async Task<Subscriber> ConnectAsync(Uri url, string? token, bool socketIo = false, bool follow = true)
    {
        var socket = new ClientWebSocket();
        if (Deflate)
        {
            socket.Options.DangerousDeflateOptions = new WebSocketDeflateOptions(); // offer permessage-deflate, as browsers do
        }
        var path = socketIo ? "/socket.io/?EIO=4&transport=websocket" : "/ws";
        await socket.ConnectAsync(new Uri($"ws://{url.Authority}{path}"), CancellationToken.None);
        var client = new Subscriber(socket, socketIo);
        if (socketIo)
        {
            await client.ReceiveAsync(); // Engine.IO open: 0{"sid":...}
            await client.SendAsync("40"); // connect to the main namespace
            await client.ReceiveAsync(); // 40{"sid":...}
            await client.SendAsync($"42[\"join_team\",{JsonSerializer.Serialize(new { token, followAgents = follow })}]");
        }
        else
        {
            await client.SendAsync(JsonSerializer.Serialize(new { type = "join_team", token, followAgents = follow }));
        }
        while (true)
        {
            var frame = await client.ReceiveAsync();
            if (frame.IndexOf("team_joined"u8) >= 0)
            {
                return client;
            }
        }
    }

    public Task SubscribeAsync(string agentId, long from = 0) => SendAsync(_socketIo
        ? $"42[\"agent_subscribe\",{JsonSerializer.Serialize(new { agentId, from })}]"
        : JsonSerializer.Serialize(new { type = "agent_subscribe", agentId, from }));

    /// <summary>
    /// Receives the agent's output from <paramref name="from"/> to its end; <paramref name="latency"/> (shared across
    /// reconnections) counts every stamp, and <paramref name="progress"/> hears each new position (a caller that
    /// reconnects after the connection breaks resumes there).
    /// </summary>
    public async Task<Received> ReceiveToEndAsync(string agentId, long from = 0, Histogram? latency = null, Action<long>? progress = null) =>
        (await ReceiveToEndAsync([agentId], from, latency, progress))[0];

    /// <summary>Receives the output of each of <paramref name="agentIds"/> (the team's agents running at once) to its end; one latency histogram for all.</summary>
    public async Task<Received[]> ReceiveToEndAsync(string[] agentIds, long from = 0, Histogram? latency = null, Action<long>? progress = null)
    {
        latency ??= new Histogram();
        var streams = agentIds.ToDictionary(id => id, _ => new AgentStream { Next = from });
        var open = agentIds.Length;
        while (open > 0)
        {
            var message = await ReceiveMessageAsync();
            var received = (TimeProvider.System.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10; // µs
            var frame = message.Span;
            if (AgentIdOf(frame) is not { } agentId || !streams.TryGetValue(agentId, out var stream) || stream.Ended)
            {
                continue; // another agent's, or not agent output at all
            }
            if (frame.IndexOf("\"agent_output_end\""u8) >= 0)
            {
                stream.Ended = true;
                open--;
                continue;
            }
            if (frame.IndexOf("\"agent_output\""u8) < 0)
            {
                continue;
            }
            stream.Wire += frame.Length;
            stream.Frames++;
            // position and next are the last properties: read them from the end, without parsing the data.
            stream.Contiguous &= NumberAfter(frame, "\"position\":"u8) == stream.Next;
            stream.Next = NumberAfter(frame, "\"next\":"u8);
            progress?.Invoke(stream.Next);
            // Each stamped line: "...sent=1763780000123456" (epoch µs) inside the data.
            var span = frame;
            int at;
            while ((at = span.IndexOf(Stamp)) >= 0)
            {
                span = span[(at + Stamp.Length)..];
                var digits = 0;
                while (digits < span.Length && span[digits] is >= (byte)'0' and <= (byte)'9')
                {
                    digits++;
                }
                // Epoch microseconds have 16 digits; fewer is a stamp cut in two by a chunk boundary (it read as 60 s once).
                if (digits == 16 && long.TryParse(span[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var sent))
                {
                    latency.Add(received - sent);
                    if (RecordTimeline)
                    {
                        var h = Timeline.GetOrAdd(sent / 1_000_000, _ => new Histogram());
                        lock (h)
                        {
                            h.Add(received - sent);
                        }
                    }
                }
            }
        }
        return [.. agentIds.Select(id => streams[id]).Select(s => new Received(s.Next, s.Contiguous, latency, s.Wire, s.Frames))];
    }

    /// <summary>The first <c>"agentId":"…"</c> of a frame (an agent output's comes before its data).</summary>
    private static string? AgentIdOf(ReadOnlySpan<byte> frame)
    {
        var at = frame.IndexOf("\"agentId\":\""u8);
        if (at < 0)
        {
            return null;
        }
        var rest = frame[(at + 11)..];
        var end = rest.IndexOf((byte)'"');
        return end < 0 ? null : Encoding.UTF8.GetString(rest[..end]);
    }

    private sealed class AgentStream
    {
        public long Next;
        public bool Contiguous = true;
        public bool Ended;
        public long Wire;
        public long Frames;
    }

    /// <summary>One whole message (the buffer grows for a large one); Engine.IO pings are answered here.</summary>
    private async Task<ReadOnlyMemory<byte>> ReceiveAsyncCore()
    {
        var count = 0;
        while (true)
        {
            if (count == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }
            var result = await _socket.ReceiveAsync(_buffer.AsMemory(count), CancellationToken.None);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new InvalidOperationException("The server closed the connection.");
            }
            count += result.Count;
            if (result.EndOfMessage)
            {
                return _buffer.AsMemory(0, count);
            }
        }
    }

    private async Task<byte[]> ReceiveAsync() => (await ReceiveMessageAsync()).ToArray();

    private async Task<ReadOnlyMemory<byte>> ReceiveMessageAsync()
    {
        while (true)
        {
            var message = await ReceiveAsyncCore();
            if (_socketIo && message.Length == 1 && message.Span[0] == (byte)'2')
            {
                await SendAsync("3"); // Engine.IO ping, pong
                continue;
            }
            return message;
        }
    }

    private Task SendAsync(string text) => _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    private static long NumberAfter(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> name)
    {
        var at = frame.LastIndexOf(name) + name.Length;
        var end = at;
        while (frame[end] is >= (byte)'0' and <= (byte)'9')
        {
            end++;
        }
        return long.Parse(frame[at..end], NumberStyles.None, CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        }
        catch (WebSocketException)
        {
        }
        _socket.Dispose();
    }
}
