using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Covibe.Execution;
using Covibe.Protocol;
using Docker.DotNet;

/// <summary>
/// Start benchmark (issue 10): how long a member waits for an agent to print its first byte, and
/// for a terminal to open and to reattach, on this machine's sandbox and in a container (a real
/// Podman serving the Docker Engine API, started here on a temp socket), against a real
/// <c>covibe serve</c> process each.
///   dotnet run -c Release --project bench/Covibe.Bench -- start [--agents 30] [--terminals 20]
/// </summary>
static class StartBench
{
    public static async Task RunAsync(string[] args)
    {
        var agents = Measure.Arg(args, "--agents", 30);
        var terminals = Measure.Arg(args, "--terminals", 20);
        var work = Path.Combine(Path.GetTempPath(), "covibe-start-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        await using var podman = await BenchPodman.StartAsync(work);
        Console.WriteLine($"{"where",-24} {"agent start p50/p99/max",-28} {"terminal open p50/p99",-24} {"terminal attach p50/p99",-24}");
        // The sandbox without and with limits per team (issue 24: what joining the team's cgroup costs), then a container; and both
        // for a team with an allowlist (issue 24: its rules in the sandbox's namespace, its chain at the bridge, the proxy's address).
        foreach (var (containers, teamLimits, egress, name) in ((bool, bool, string, string)[])[(false, false, "open", "sandbox, no team limits"), (false, true, "open", "sandbox"),
            (false, true, "allowlist", "sandbox, allowlist"), (true, true, "open", "container"), (true, true, "allowlist", "container, allowlist")])
        {
            var (start, open, attach) = await RunServerAsync(work, containers, teamLimits, egress, agents, terminals);
            Console.WriteLine($"{name,-24} {Ms(start),-28} {Ms(open, max: false),-24} {Ms(attach, max: false),-24}");
        }
    }

    private static string Ms(long[] sorted, bool max = true) =>
        $"{Measure.Percentile(sorted, 0.5)} / {Measure.Percentile(sorted, 0.99)}{(max ? $" / {sorted[^1]}" : "")} ms";

    private static async Task<(long[] Start, long[] Open, long[] Attach)> RunServerAsync(string work, bool containers, bool teamLimits, string egress, int agents, int terminals)
    {
        var data = Path.Combine(work, (containers ? "data-container" : teamLimits ? "data-sandbox" : "data-sandbox-unlimited") + "-" + egress);
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(data, url, "--Covibe:Agents:SpawnsPerMinute=10000", "--Covibe:Agents:MaxActivePerTeam=10000",
            "--Covibe:Agents:Types:hello:Command:0=sh", "--Covibe:Agents:Types:hello:Command:1=-c", "--Covibe:Agents:Types:hello:Command:2=echo first",
            "--Covibe:Terminals:DefaultShell=/bin/sh", "--Covibe:Terminals:MaxSessionsPerUser=1000", "--Covibe:Terminals:MaxSessions=1000",
            $"--Covibe:Containers:Agents={containers}", $"--Covibe:Isolation:TeamLimits={teamLimits}", $"--Covibe:Egress:Default={egress}", "--Covibe:Egress:ProxyPort=0", $"--Covibe:Containers:Host=unix://{work}/podman.sock", "--Covibe:Containers:Image=covibe-agent:bench");
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var token = await Measure.CreateTeamAsync(http);

            using var hub = await Measure.JoinHubAsync(url, token, followAgents: true);
            var buffer = new byte[1024 * 1024];
            var starts = new List<long>();
            // One warm-up first (JIT, the team's workspace, the image's first use), then the measured ones.
            for (var i = 0; i <= agents; i++)
            {
                var watch = Stopwatch.StartNew();
                using var reply = await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("start", "hello"));
                var agent = (await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.AgentDto))!;
                var needle = Encoding.UTF8.GetBytes($"\"agentId\":\"{agent.Id}\"");
                while (true)
                {
                    var (count, _) = await Measure.ReceiveMessageAsync(hub, buffer);
                    var frame = buffer.AsSpan(0, count);
                    if (frame.IndexOf("\"agent_output\""u8) >= 0 && frame.IndexOf(needle) >= 0)
                    {
                        break;
                    }
                }
                if (i > 0)
                {
                    starts.Add(watch.ElapsedMilliseconds);
                }
            }

            var opens = new List<long>();
            var attaches = new List<long>();
            // From a session action on a fresh connection to the terminal's first output; the first round warms up.
            async Task<long> TimeAsync(string id, string action, bool close)
            {
                using var socket = await TerminalAsync(url, token, buffer);
                var watch = Stopwatch.StartNew();
                await SendAsync(socket, $$"""{"type":"session","action":"{{action}}","id":"{{id}}"}""");
                await UntilAsync(socket, buffer, "\"type\":\"output\"");
                var elapsed = watch.ElapsedMilliseconds;
                if (close)
                {
                    await SendAsync(socket, $$"""{"type":"session","action":"close","id":"{{id}}"}""");
                }
                return elapsed;
            }
            for (var i = 0; i <= terminals; i++)
            {
                var opened = await TimeAsync($"bench-{i}", "create", close: false);
                var attached = await TimeAsync($"bench-{i}", "attach", close: true);
                if (i > 0)
                {
                    opens.Add(opened);
                    attaches.Add(attached);
                }
            }
            return ([.. starts.Order()], [.. opens.Order()], [.. attaches.Order()]);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    private static async Task<ClientWebSocket> TerminalAsync(string url, string token, byte[] buffer)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{new Uri(url).Port}/terminal"), CancellationToken.None);
        await UntilAsync(socket, buffer, "\"ready\"");
        return socket;
    }

    private static Task SendAsync(ClientWebSocket socket, string json) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None);

    private static async Task UntilAsync(ClientWebSocket socket, byte[] buffer, string text)
    {
        var needle = Encoding.UTF8.GetBytes(text);
        while (true)
        {
            var (count, closed) = await Measure.ReceiveMessageAsync(socket, buffer);
            if (closed)
            {
                throw new InvalidOperationException($"The server closed the terminal connection waiting for {text}: {Encoding.UTF8.GetString(buffer, 0, count)}");
            }
            if (buffer.AsSpan(0, count).IndexOf(needle) >= 0)
            {
                return;
            }
        }
    }
}
