using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;

// Fan-out benchmark (issue 3): one agent (the fake claude) writes stream-json at a fixed rate;
// N WebSocket subscribers on loopback receive it. Reports p50/p99 latency from the agent's
// write (a send stamp inside each line) to each subscriber's receipt, bytes lost, and the
// server process's CPU and memory; then the time a late joiner takes to replay the output.
//
//   dotnet run -c Release --project bench/Covibe.Bench -- [--subscribers 100] [--seconds 20] [--rate 1048576]
//
// Terminal benchmark (issue 6): see TerminalBench.cs.
//   dotnet run -c Release --project bench/Covibe.Bench -- terminal [--keystrokes 2000] [--megabytes 100]
// Start benchmark (issue 10): agent start and terminal open/attach, sandbox beside container; see StartBench.cs.
//   dotnet run -c Release --project bench/Covibe.Bench -- start [--agents 30] [--terminals 20]
// Idle benchmark (issue 11): memory per idle joined hub connection; see IdleBench.cs.
//   dotnet run -c Release --project bench/Covibe.Bench -- idle [--connections 2000]

if (args.FirstOrDefault() == "terminal")
{
    await TerminalBench.RunAsync(args);
    return;
}
if (args.FirstOrDefault() == "start")
{
    await StartBench.RunAsync(args);
    return;
}
if (args.FirstOrDefault() == "idle")
{
    await IdleBench.RunAsync(args);
    return;
}

var subscribers = Arg("--subscribers", 100);
var seconds = Arg("--seconds", 20);
var rate = Arg("--rate", 1024 * 1024);

var data = Path.Combine(Path.GetTempPath(), "covibe-bench-" + Guid.NewGuid().ToString("N")[..8]);
var fakeDirectory = Path.Combine(AppContext.BaseDirectory, "fake-claude");
var port = Measure.FreePort();
var url = $"http://127.0.0.1:{port}";
var server = StartServer();
try
{
    await Measure.WaitHealthyAsync(url);
    using var http = new HttpClient { BaseAddress = new Uri(url) };
    var token = await Measure.CreateTeamAsync(http);

    // Subscribers join first and follow the team's agents (seed 001's join_team), so they are
    // attached when an agent's feed opens, before its first byte: every byte is measured live.
    var clients = new List<Subscriber>();
    for (var i = 0; i < subscribers; i++)
    {
        var client = await Subscriber.ConnectAsync(new Uri(url), token);
        await client.JoinAsync(token);
        clients.Add(client);
    }
    // Bytes per line are about 420 with the stamp; enough lines for the duration at the rate.
    var lines = (int)((long)rate * seconds / 420);
    // Warm-up: a 2 s agent through the same path, so the numbers below are a warm server's
    // (JIT, thread pool); the cold first second is reported apart.
    var (_, warmup, _) = await RunAgentAsync(http, clients, (int)((long)rate * 2 / 420));
    var coldLatencies = warmup.SelectMany(r => r.Latencies).Order().ToArray();
    Subscriber.Timeline.Clear();
    Interlocked.Exchange(ref Subscriber.WireBytes, 0);

    var cpuBefore = Measure.CpuSeconds(server.Id);
    var clientCpuBefore = Measure.CpuSeconds(Environment.ProcessId);
    var wall = Stopwatch.StartNew();
    var (agent, results, log) = await RunAgentAsync(http, clients, lines);
    wall.Stop();
    var cpu = Measure.CpuSeconds(server.Id) - cpuBefore;
    var peakRss = Measure.PeakRssMegabytes(server.Id);
    var timeline = Subscriber.Timeline.ToArray();

    var latencies = results.SelectMany(r => r.Latencies).Order().ToArray();
    var lost = results.Sum(r => Math.Max(0, log.Length - r.Bytes));
    var corrupt = results.Count(r => !r.Contiguous || r.Bytes != log.Length);

    // A late joiner replays everything from position 0.
    var late = await Subscriber.ConnectAsync(new Uri(url), token);
    var catchUp = Stopwatch.StartNew();
    await late.SubscribeAsync(agent.Id);
    var replay = await late.ReceiveToEndAsync(agent.Id);
    catchUp.Stop();

    if (args.Contains("--timeline"))
    {
        var first = timeline.Min(t => t.Sent);
        foreach (var second in timeline.GroupBy(t => (t.Sent - first) / 1000).OrderBy(g => g.Key))
        {
            var sorted = second.Select(t => t.Latency).Order().ToArray();
            Console.Error.WriteLine($"second {second.Key}: p50 {Measure.Percentile(sorted, 0.5)} p99 {Measure.Percentile(sorted, 0.99)} max {sorted[^1]}");
        }
    }
    Console.WriteLine($"| subscribers | {subscribers} |");
    Console.WriteLine($"| agent output | {log.Length / 1048576.0:0.0} MiB in {wall.Elapsed.TotalSeconds:0.0} s ({log.Length / wall.Elapsed.TotalSeconds / 1048576:0.00} MiB/s) |");
    Console.WriteLine($"| latency p50 / p99 / max | {Measure.Percentile(latencies, 0.50)} ms / {Measure.Percentile(latencies, 0.99)} ms / {latencies.LastOrDefault()} ms ({latencies.Length:N0} samples) |");
    Console.WriteLine($"| bytes lost | {lost} (subscribers with a gap or short stream: {corrupt}) |");
    Console.WriteLine($"| bytes on the wire per output byte | {(double)Interlocked.Read(ref Subscriber.WireBytes) / subscribers / log.Length:0.00} |");
    Console.WriteLine($"| server CPU | {cpu:0.0} s over {wall.Elapsed.TotalSeconds:0.0} s = {cpu / wall.Elapsed.TotalSeconds * 100:0}% of one core |");
    Console.WriteLine($"| server peak RSS | {peakRss:0} MiB |");
    Console.WriteLine($"| benchmark client CPU (same machine) | {Measure.CpuSeconds(Environment.ProcessId) - clientCpuBefore:0.0} s |");
    Console.WriteLine($"| cold start (warm-up agent, first 2 s of a fresh server) p50 / p99 | {Measure.Percentile(coldLatencies, 0.50)} ms / {Measure.Percentile(coldLatencies, 0.99)} ms |");
    Console.WriteLine($"| late joiner replay | {replay.Bytes / 1048576.0:0.0} MiB in {catchUp.Elapsed.TotalMilliseconds:0} ms (complete: {replay.Bytes == log.Length && replay.Contiguous}) |");
    foreach (var c in clients)
    {
        await c.DisposeAsync();
    }
    await late.DisposeAsync();
}
finally
{
    server.Kill(entireProcessTree: true);
    await server.WaitForExitAsync();
    foreach (var dir in Directory.GetDirectories(Path.Combine(data, "agents")))
    {
        // Agents are killed with the server's process tree only if still running; be sure.
        if (File.Exists(Path.Combine(dir, "exit")) is false)
        {
            Console.Error.WriteLine($"warning: agent in {dir} may still run");
        }
    }
    Directory.Delete(data, recursive: true);
}

async Task<(AgentDto Agent, (long Bytes, bool Contiguous, List<long> Latencies)[] Results, byte[] Log)> RunAgentAsync(HttpClient http, List<Subscriber> clients, int lines)
{
    var agent = (await (await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest($"bench [[stamp]] [[rate={rate}]] [[lines={lines}]]", "claude"))).Content
        .ReadFromJsonAsync(CovibeJsonContext.Default.AgentDto))!;
    var results = await Task.WhenAll(clients.Select(c => c.ReceiveToEndAsync(agent.Id)));
    return (agent, results, await File.ReadAllBytesAsync(Path.Combine(data, "agents", agent.Id, "output.log")));
}

int Arg(string name, int fallback) => Measure.Arg(args, name, fallback);

Process StartServer() => Measure.StartServer(data, url,
    $"--Covibe:Agents:Types:claude:Environment:PATH={fakeDirectory}:{Environment.GetEnvironmentVariable("PATH")}",
    // All subscribers are one member here: lift the per-member connection cap (20 by default).
    "--Covibe:Hub:MaxConnectionsPerMember=10000");

/// <summary>One WebSocket client that checks contiguity and measures stamp-to-receipt latency.</summary>
sealed class Subscriber : IAsyncDisposable
{
    private static readonly byte[] Stamp = "sent="u8.ToArray();
    private readonly ClientWebSocket _socket;

    private Subscriber(ClientWebSocket socket) => _socket = socket;

    public static async Task<Subscriber> ConnectAsync(Uri server, string token)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        await socket.ConnectAsync(new Uri($"ws://{server.Authority}/ws"), CancellationToken.None);
        return new Subscriber(socket);
    }

    public Task JoinAsync(string token) => _socket.SendAsync(
        JsonSerializer.SerializeToUtf8Bytes(new JoinTeamMessage(null, token, FollowAgents: true), CovibeJsonContext.Default.JoinTeamMessage),
        WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SubscribeAsync(string agentId) => _socket.SendAsync(
        JsonSerializer.SerializeToUtf8Bytes(new AgentSubscribeMessage(agentId, 0), CovibeJsonContext.Default.AgentSubscribeMessage),
        WebSocketMessageType.Text, true, CancellationToken.None);

    public async Task<(long Bytes, bool Contiguous, List<long> Latencies)> ReceiveToEndAsync(string agentId)
    {
        var buffer = new byte[4 * 1024 * 1024];
        var agentIdField = Encoding.UTF8.GetBytes($"\"agentId\":\"{agentId}\"");
        var latencies = new List<long>();
        long next = 0;
        var contiguous = true;
        while (true)
        {
            var (count, _) = await Measure.ReceiveMessageAsync(_socket, buffer);
            var received = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
            var frame = buffer.AsSpan(0, count);
            if (frame.IndexOf(agentIdField) < 0)
            {
                continue; // another agent's, or not agent output at all
            }
            if (frame.IndexOf("\"agent_output_end\""u8) >= 0)
            {
                return (next, contiguous, latencies);
            }
            if (frame.IndexOf("\"agent_output\""u8) < 0)
            {
                continue;
            }
            Interlocked.Add(ref WireBytes, count);
            // position and next are the last properties: read them from the end, without parsing the data.
            contiguous &= NumberAfter(frame, "\"position\":"u8) == next;
            next = NumberAfter(frame, "\"next\":"u8);
            // Each stamped line: "...sent=1763780000123." inside the data.
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
                if (digits >= 12 && long.TryParse(Encoding.ASCII.GetString(span[..digits]), CultureInfo.InvariantCulture, out var sent))
                {
                    latencies.Add(received - sent);
                    Timeline.Add((sent, received - sent));
                }
            }
        }
    }

    public static readonly ConcurrentBag<(long Sent, long Latency)> Timeline = [];

    /// <summary>Bytes of agent_output frames received by all subscribers (to compare with the output's own size).</summary>
    public static long WireBytes;

    private static long NumberAfter(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> name)
    {
        var at = frame.LastIndexOf(name) + name.Length;
        var end = at;
        while (frame[end] is >= (byte)'0' and <= (byte)'9')
        {
            end++;
        }
        return long.Parse(Encoding.ASCII.GetString(frame[at..end]), CultureInfo.InvariantCulture);
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
