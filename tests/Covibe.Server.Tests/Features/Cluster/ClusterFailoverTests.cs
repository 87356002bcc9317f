using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Covibe.Server.Tests;

/// <summary>
/// Nodes as an operator runs them: real <c>covibe serve</c> processes on one PostgreSQL and one Redis, behind nginx with
/// no sticky sessions. Killing (-9) the node that follows an agent, or restarting every node one at a time, loses no
/// byte for anyone watching: the clients reconnect through nginx and resume by position, and a surviving node takes the
/// agent over and follows it to the end.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed class ClusterFailoverTests(PostgresServer postgres, RedisServer redis, ITestOutputHelper output) : IClassFixture<PostgresServer>
{
    private async Task<(ClusterNode A, ClusterNode B)> StartNodesAsync(IReadOnlyDictionary<string, string> settings)
    {
        var database = await postgres.CreateDatabaseAsync();
        var all = redis.ClusterSettings();
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }
        var a = ClusterNode.StartAsync("A", database, all);
        var b = ClusterNode.StartAsync("B", database, all);
        return (await a, await b);
    }

    private static readonly System.Collections.Concurrent.ConcurrentBag<string> Failures = [];

    /// <summary>What one watcher saw: every byte in order, how the agent ended, how often it had to reconnect, and when bytes came again after each drop.</summary>
    private sealed record Watched(byte[] Bytes, string Status, int Reconnects, List<TimeSpan> Gaps);

    /// <summary>
    /// Watches an agent's output through the load balancer from position 0 to its end as a client does: when the
    /// connection drops, it connects again (nginx picks a live node) and subscribes from the position it has.
    /// </summary>
    private static async Task<Watched> WatchAsync(Uri balancer, string token, string agentId, Action<long> progress)
    {
        var all = new MemoryStream();
        long next = 0;
        var reconnects = -1;
        var gaps = new List<TimeSpan>();
        Stopwatch? dropped = null;
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromMinutes(3))
        {
            reconnects++;
            HubClient hub;
            try
            {
                hub = await HubClient.ConnectAsync(balancer, token);
                await hub.ReceiveAsync("team_joined");
            }
            catch (Exception e) when (e is WebSocketException or InvalidOperationException or TimeoutException)
            {
                Failures.Add(e.GetType().Name + ": " + e.Message);
                await Task.Delay(100);
                continue;
            }
            await using (hub)
            {
                await hub.SendAsync(new { type = "agent_subscribe", agentId, from = next });
                try
                {
                    while (true)
                    {
                        var m = await hub.ReceiveAsync(e => e.GetProperty("type").GetString() is "agent_output" or "agent_output_end"
                            && e.GetProperty("agentId").GetString() == agentId, TimeSpan.FromSeconds(60), $"output of {agentId}");
                        if (m.GetProperty("type").GetString() == "agent_output_end")
                        {
                            m.GetProperty("next").GetInt64().ShouldBe(next);
                            return new Watched(all.ToArray(), m.GetProperty("status").GetString()!, reconnects, gaps);
                        }
                        m.GetProperty("position").GetInt64().ShouldBe(next, "no gap, no duplicate");
                        var data = AgentHelpers.Decode(m);
                        all.Write(data);
                        next += data.Length;
                        if (dropped is not null)
                        {
                            gaps.Add(dropped.Elapsed);
                            dropped = null;
                        }
                        progress(next);
                    }
                }
                catch (InvalidOperationException)
                {
                    dropped ??= Stopwatch.StartNew(); // the node went away: connect again
                }
            }
        }
        throw new TimeoutException($"The output of {agentId} did not end within 3 minutes.");
    }

    private static async Task<(string Token, AgentDto Agent)> SpawnOnAsync(ClusterNode node, string type)
    {
        using var http = new HttpClient { BaseAddress = node.Url };
        using var created = await http.PostAsJsonAsync("/api/team/create", new CreateTeamRequest("Nodes", "Sarah", $"sarah{Guid.NewGuid():N}@example.com", TestServer.Password));
        var token = (await created.Content.ReadFromJsonAsync<CreateTeamResponse>())!.Auth.AccessToken;
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        using var spawned = await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("through node " + node.Name, type));
        spawned.StatusCode.ShouldBe(System.Net.HttpStatusCode.Created, await spawned.Content.ReadAsStringAsync());
        return (token, (await spawned.Content.ReadFromJsonAsync<AgentDto>())!);
    }

    [Fact]
    public async Task TheNodeFollowingAnAgentIsKilled_ClientsResumeThroughNginx_AndAnotherNodeTakesTheAgentOver()
    {
        var settings = new Dictionary<string, string>
        {
            ["Covibe:Agents:MockDelayMilliseconds"] = "100",
            ["Covibe:Agents:MockSteps"] = "100", // about 10 s of output
            ["Covibe:Agents:LeaseSeconds"] = "3",
        };
        var (a, b) = await StartNodesAsync(settings);
        await using var nodeA = a;
        await using var nodeB = b;
        await using var nginx = await NginxServer.StartAsync([a.Url, b.Url]);
        var (token, agent) = await SpawnOnAsync(a, "mock"); // node A follows it

        // Four watchers through nginx (round-robin: some on each node).
        var seen = new long[4];
        var watchers = Enumerable.Range(0, 4).Select(i => Task.Run(() => WatchAsync(nginx.Url, token, agent.Id, n => Volatile.Write(ref seen[i], n)))).ToArray();
        await Eventually.UntilAsync(() => Task.FromResult(seen.Min()), n => n >= 1500, "every watcher has some output");

        var killedAt = Stopwatch.StartNew();
        await a.KillAsync();

        var results = await Task.WhenAll(watchers);
        var log = await File.ReadAllBytesAsync(Path.Combine(a.DataDirectory, "agents", agent.Id, "output.log"));
        foreach (var watched in results)
        {
            watched.Status.ShouldBe("completed", "node B took the agent over and saw it finish");
            watched.Bytes.ShouldBe(log, "every byte, once, in order");
        }
        results.Sum(r => r.Reconnects).ShouldBeGreaterThan(0, "some watchers were on node A and came back through nginx");
        using var http = new HttpClient { BaseAddress = nginx.Url };
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        (await http.GetFromJsonAsync<AgentDto>($"/api/agent/{agent.Id}"))!.Status.ShouldBe("completed");
        output.WriteLine($"killed after {killedAt.Elapsed}; gaps seen by reconnecting watchers: {string.Join(", ", results.SelectMany(r => r.Gaps).Select(g => $"{g.TotalMilliseconds:0} ms"))}");
    }

    [Fact]
    public async Task ARollingRestartOfEveryNode_DuringA1MBpsStream_LosesNoByteForAnyWatcher()
    {
        var settings = new Dictionary<string, string> { ["Covibe:Agents:LeaseSeconds"] = "4" };
        // About 1 MB/s of base64 lines for about 20 s.
        AgentHelpers.AddType(settings, "stream", ["sh", "-c",
            "i=0; while [ $i -lt 400 ]; do head -c 37500 /dev/urandom | base64 -w 76; i=$((i+1)); sleep 0.05; done; echo stream done"]);
        var (a, b) = await StartNodesAsync(settings);
        await using var nodeA = a;
        await using var nodeB = b;
        await using var nginx = await NginxServer.StartAsync([a.Url, b.Url]);
        var (token, agent) = await SpawnOnAsync(a, "stream");

        const int count = 10;
        var seen = new long[count];
        var watchers = Enumerable.Range(0, count).Select(i => Task.Run(() => WatchAsync(nginx.Url, token, agent.Id, n => Volatile.Write(ref seen[i], n)))).ToArray();
        await Eventually.UntilAsync(() => Task.FromResult(seen.Min()), n => n >= 100_000, "every watcher has some output");

        // One node at a time, as an operator upgrades them: stopped in order (SIGTERM), started again, healthy, the next.
        foreach (var node in new[] { a, b })
        {
            var before = seen.Max();
            var restart = Stopwatch.StartNew();
            await node.StopAsync();
            var stopped = restart.Elapsed;
            await node.StartAsync();
            output.WriteLine($"node {node.Name} ({node.Url.Port}) at {TimeProvider.System.GetUtcNow():HH:mm:ss.fff}: stopped in {stopped.TotalMilliseconds:0} ms, healthy again after {restart.Elapsed.TotalMilliseconds:0} ms; watchers at {seen.Min()}..{seen.Max()}");
            await Eventually.UntilAsync(() => Task.FromResult(seen.Min()), n => n > before || watchers.All(w => w.IsCompleted),
                $"every watcher gets new output after node {node.Name} restarted", TimeSpan.FromSeconds(30));
        }

        var results = await Task.WhenAll(watchers);
        var log = await File.ReadAllBytesAsync(Path.Combine(a.DataDirectory, "agents", agent.Id, "output.log"));
        log.Length.ShouldBeGreaterThan(15_000_000);
        foreach (var watched in results)
        {
            watched.Status.ShouldBe("completed");
            watched.Bytes.Length.ShouldBe(log.Length);
            watched.Bytes.ShouldBe(log, "every byte, once, in order");
        }
        output.WriteLine($"{log.Length} bytes; reconnects {results.Sum(r => r.Reconnects)}; gaps: {string.Join(", ", results.SelectMany(r => r.Gaps).Select(g => $"{g.TotalMilliseconds:0} ms"))}");
        output.WriteLine(string.Join("\n", Failures.GroupBy(f => f).Select(g => $"{g.Count()} x {g.Key}")));
        output.WriteLine(nginx.ErrorLog[..Math.Min(3000, nginx.ErrorLog.Length)]);
        results.Sum(r => r.Reconnects).ShouldBeGreaterThanOrEqualTo(count, "every watcher was on a node that restarted");
    }
}
