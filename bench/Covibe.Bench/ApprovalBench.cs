using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Threading.Channels;

/// <summary>
/// Approvals (issue 26): how long an agent's permission request takes to reach the approver's screen (from the moment the
/// fake claude writes it, stamped, to the hub message on the approver's connection), and how long the approver's answer
/// takes to get the agent going (from sending the approval to the tool's result arriving on the same connection). One
/// conversation of --turns turns, each asking once; on one node, then with the agent followed by node A and the approver
/// on node B (one PostgreSQL, one Redis).
///   approvals [--turns 50]
/// </summary>
static class ApprovalBench
{
    private const string JwtSecret = "bench-secret-bench-secret-bench-secret-0123456789";
    private const string EncryptionKey = "bench-encryption-key-0123456789-abcdefghijklmnop";

    public static async Task RunAsync(string[] args)
    {
        var turns = Measure.Arg(args, "--turns", 50);
        var work = Directory.CreateTempSubdirectory("covibe-approval-bench-").FullName;
        try
        {
            await using var postgres = await BenchPostgres.StartAsync(work + "-pg");
            await using var redis = await BenchRedis.StartAsync(Path.Combine(work, "redis"));
            Console.WriteLine($"{turns} requests, {TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores");
            Console.WriteLine();
            Console.WriteLine("| run | request to the approver's screen p50 / p99 | answer to the agent going on p50 / p99 |");
            Console.WriteLine("| --- | --- | --- |");
            foreach (var nodes in new[] { 1, 2 })
            {
                var database = await postgres.CreateDatabaseAsync();
                Console.WriteLine(await RunAsync(Path.Combine(work, $"run{nodes}"), nodes, database, redis.Url, turns));
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<string> RunAsync(string work, int nodeCount, string database, string redisUrl, int turns)
    {
        var fakeClaude = Path.Combine(AppContext.BaseDirectory, "fake-claude", "claude");
        var processes = new List<Process>();
        var urls = new List<string>();
        try
        {
            for (var i = 0; i < nodeCount; i++)
            {
                var url = $"http://127.0.0.1:{Measure.FreePort().ToString(CultureInfo.InvariantCulture)}";
                processes.Add(Measure.StartServer(Path.Combine(work, $"node{i}"), url,
                    $"--Covibe:Database:ConnectionString={database}", $"--Covibe:Cluster:RedisUrl={redisUrl}",
                    $"--Covibe:Auth:JwtSecret={JwtSecret}", $"--Covibe:Secrets:EncryptionKey={EncryptionKey}",
                    $"--Covibe:Agents:Types:claude-chat:Environment:PATH={Path.GetDirectoryName(fakeClaude)}:{Environment.GetEnvironmentVariable("PATH")}",
                    "--Covibe:Agents:Permissions:Mode=ask", "--Covibe:Auth:AttemptsPerMinute=100000"));
                await Measure.WaitHealthyAsync(url); // one at a time: the first migrates the database
                urls.Add(url);
            }
            using var http = new HttpClient { BaseAddress = new Uri(urls[0]), Timeout = TimeSpan.FromMinutes(2) };
            var token = await Measure.CreateTeamAsync(http);
            // The approver is on the last node: across two, not the one that follows the agent (it starts where it is spawned).
            using var approver = new HttpClient { BaseAddress = new Uri(urls[^1]), Timeout = TimeSpan.FromMinutes(2) };
            approver.DefaultRequestHeaders.Authorization = new("Bearer", token);
            using var hub = await Measure.JoinHubAsync(urls[^1], token, followAgents: true);

            var requests = Channel.CreateUnbounded<(string AgentId, string RequestId, long SentMs, long Arrived)>();
            var results = Channel.CreateUnbounded<long>();
            var listening = Task.Run(async () =>
            {
                var buffer = new byte[4 * 1024 * 1024];
                while (true)
                {
                    var (count, closed) = await Measure.ReceiveMessageAsync(hub, buffer);
                    if (closed)
                    {
                        return;
                    }
                    var now = Stopwatch.GetTimestamp();
                    var nowMs = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
                    using var message = JsonDocument.Parse(buffer.AsMemory(0, count));
                    var root = message.RootElement;
                    switch (root.GetProperty("type").GetString())
                    {
                        case "agent_permission_request":
                            var request = root.GetProperty("request");
                            var description = request.GetProperty("description").GetString() ?? "";
                            var sent = long.Parse(description[(description.LastIndexOf("sent=", StringComparison.Ordinal) + 5)..], CultureInfo.InvariantCulture) / 1000; // µs
                            requests.Writer.TryWrite((request.GetProperty("agentId").GetString()!, request.GetProperty("requestId").GetString()!, nowMs - sent, now));
                            break;
                        case "agent_output" when root.GetProperty("data").GetString() is { } data && data.Contains("\"tool_result\"", StringComparison.Ordinal):
                            results.Writer.TryWrite(now);
                            break;
                    }
                }
            });

            using var reply = await http.PostAsJsonAsync("/api/agent/spawn", new { task = "turn 0 [[stamp]] [[lines=1]]", agentType = "claude-chat" });
            reply.EnsureSuccessStatusCode();
            var agentId = (await reply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
            var toScreen = new List<long>();
            var toAgent = new List<long>();
            // One more turn than measured: the first request of a fresh server (its code not yet compiled) is reported apart.
            long firstToScreen = 0, firstToAgent = 0;
            for (var turn = 0; turn <= turns; turn++)
            {
                if (turn > 0)
                {
                    await WaitWaitingAsync(http, agentId);
                    (await http.PostAsJsonAsync($"/api/agent/{agentId}/input", new { data = $"turn {turn} [[stamp]] [[lines=1]]" })).EnsureSuccessStatusCode();
                }
                var asked = await requests.Reader.ReadAsync();
                toScreen.Add(asked.SentMs);
                var answered = Stopwatch.GetTimestamp();
                (await approver.PostAsJsonAsync($"/api/agent/{agentId}/approve", new { requestId = asked.RequestId })).EnsureSuccessStatusCode();
                var arrived = await results.Reader.ReadAsync();
                toAgent.Add((long)Stopwatch.GetElapsedTime(answered, arrived).TotalMilliseconds);
                if (turn == 0)
                {
                    (firstToScreen, firstToAgent) = (toScreen[0], toAgent[0]);
                    toScreen.Clear();
                    toAgent.Clear();
                }
            }
            (await http.PostAsync($"/api/agent/{agentId}/end", null)).EnsureSuccessStatusCode();
            await hub.CloseOutputAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
            string P(List<long> values)
            {
                var sorted = values.Order().ToArray();
                return $"{Measure.Percentile(sorted, 0.5)} / {Measure.Percentile(sorted, 0.99)} ms";
            }
            return $"| {(nodeCount == 1 ? "one node" : "two nodes (agent on A, approver on B)")} | {P(toScreen)} (first: {firstToScreen} ms) | {P(toAgent)} (first: {firstToAgent} ms) |";
        }
        finally
        {
            foreach (var p in processes)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
            }
        }
    }

    private static async Task WaitWaitingAsync(HttpClient http, string agentId)
    {
        for (var i = 0; i < 600; i++)
        {
            var agent = await http.GetFromJsonAsync<JsonElement>($"/api/agent/{agentId}");
            if (agent.GetProperty("status").GetString() == "waiting")
            {
                return;
            }
            await Task.Delay(10);
        }
        throw new TimeoutException("the turn did not end");
    }
}
