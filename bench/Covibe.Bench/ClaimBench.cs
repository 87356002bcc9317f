using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Microsoft.Data.Sqlite;

/// <summary>
/// The warm-pool claim path alone (issues 13 and 23): bursts of 20 claims at once against a pool whose ready boxes are
/// written straight into the server's SQLite database, so no container engine, refill or cleanup runs beside them (the
/// pool is paused, and large enough that nothing is retired). Client latency over HTTP on loopback and the server's own
/// figure, over every claim of every burst after a first one that warms up. <c>boxes</c> measures claims in a real pool
/// with Podman; this one separates the claim from what else the machine does, with many bursts instead of one.
///   dotnet run -c Release --project bench/Covibe.Bench -- claims [--bursts 30] [--claims 20]
/// </summary>
static class ClaimBench
{
    private const string Repo = "https://example.com/app.git";

    public static async Task RunAsync(string[] args)
    {
        var bursts = Measure.Arg(args, "--bursts", 30);
        var claims = Measure.Arg(args, "--claims", 20);
        var work = Path.Combine(Path.GetTempPath(), "covibe-claim-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(Path.Combine(work, "data"), url, "--Covibe:Boxes:MaxBoxesPerTeam=10000", "--Covibe:Boxes:MaxPoolInstances=1000");
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var team = await Measure.TeamAsync(http);
            var teamId = team.Auth.Team.Id;
            await SeedAsync(Path.Combine(work, "data", "covibe.db"), teamId, claims * (bursts + 1));
            // One connection per claimer, opened before the first burst.
            await Task.WhenAll(Enumerable.Range(0, claims).Select(_ => http.GetAsync("/health")));

            var client = new List<long>();
            var measured = new List<long>();
            for (var burst = 0; burst <= bursts; burst++)
            {
                var results = await Task.WhenAll(Enumerable.Range(0, claims).Select(async _ =>
                {
                    var watch = Stopwatch.StartNew();
                    using var reply = await http.PostAsJsonAsync("/api/boxes", new BoxRequest(Repo, "main"), CovibeJsonContext.Default.BoxRequest);
                    var box = reply.StatusCode == HttpStatusCode.OK
                        ? (await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.BoxDto))!
                        : throw new InvalidOperationException($"POST /api/boxes: {(int)reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
                    return (watch.ElapsedMilliseconds, (long)Math.Ceiling(box.ClaimMs!.Value));
                }));
                if (burst > 0)
                {
                    client.AddRange(results.Select(r => r.ElapsedMilliseconds));
                    measured.AddRange(results.Select(r => r.Item2));
                }
                await Task.Delay(300);
            }
            var c = client.Order().ToArray();
            var s = measured.Order().ToArray();
            Console.WriteLine($"{TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores; {bursts} bursts of {claims} claims at once");
            Console.WriteLine("| claims at once, the claim path alone | client p50 / p99 / max | server p50 / p99 |");
            Console.WriteLine("| --- | --- | --- |");
            Console.WriteLine($"| {bursts} x {claims} | {Measure.Percentile(c, 0.5)} / {Measure.Percentile(c, 0.99)} / {c[^1]} ms | {Measure.Percentile(s, 0.5)} / {Measure.Percentile(s, 0.99)} ms |");
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>A paused pool (minStandby and maxInstances 1000: nothing made, nothing retired) with <paramref name="boxes"/> ready boxes.</summary>
    private static async Task SeedAsync(string database, string teamId, int boxes)
    {
        await using var db = new SqliteConnection($"Data Source={database};Default Timeout=30");
        await db.OpenAsync();
        await using var transaction = await db.BeginTransactionAsync();
        var now = TimeProvider.System.GetUtcNow().UtcDateTime;
        await using (var pool = db.CreateCommand())
        {
            pool.CommandText = """
                INSERT INTO box_pools (id, team_id, repo_url, base_branch, min_standby, max_instances, source, backend, head_commit, head_checked_at,
                    misses, failures, paused_reason, created_at, updated_at)
                VALUES ('bench-pool', $team, $repo, 'main', 1000, 1000, 'api', 'container', 'c0ffee', '2099-01-01 00:00:00', 0, 0, 'benchmark', $now, $now)
                """;
            pool.Parameters.AddWithValue("$team", teamId);
            pool.Parameters.AddWithValue("$repo", Repo);
            pool.Parameters.AddWithValue("$now", now);
            await pool.ExecuteNonQueryAsync();
        }
        for (var i = 0; i < boxes; i++)
        {
            await using var box = db.CreateCommand();
            box.CommandText = """
                INSERT INTO boxes (id, team_id, pool_id, repo_url, branch, "commit", status, step, backend, devcontainer, created_at, ready_at, attempts)
                VALUES ($id, $team, 'bench-pool', $repo, 'main', 'c0ffee', 'ready', 'ready', 'container', 0, $now, $ready, 1)
                """;
            box.Parameters.AddWithValue("$id", $"bench{i:D6}");
            box.Parameters.AddWithValue("$team", teamId);
            box.Parameters.AddWithValue("$repo", Repo);
            box.Parameters.AddWithValue("$now", now);
            box.Parameters.AddWithValue("$ready", now.AddMilliseconds(i));
            await box.ExecuteNonQueryAsync();
        }
        await transaction.CommitAsync();
    }
}
