using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Net.WebSockets;
using Microsoft.Diagnostics.NETCore.Client;

/// <summary>
/// What idle costs (issues 11 and 28): a server's memory fresh, then with N joined hub connections that say nothing, each
/// read after a full GC forced in the server (over EventPipe, as dotnet-gcdump does) and a moment to settle. Three rulers
/// side by side: RSS (counts clean, shared, reclaimable pages of code), PSS (shared pages split among the processes that
/// map them) and private memory (RssAnon + RssShmem: what this process alone holds). Covibe and the bare Kestrel
/// broadcaster (BareKestrel.cs: only the job) run in the same run, with the same client.
///   idle [--connections 2000] [--servers covibe,bare] [--hold S]
/// </summary>
static class IdleBench
{
    public static async Task RunAsync(string[] args)
    {
        var count = Measure.Arg(args, "--connections", 2000);
        var names = (Array.IndexOf(args, "--servers") is var at and >= 0 ? args[at + 1] : "covibe,bare").Split(',');
        var rows = new List<(string Name, Memory Fresh, Memory Joined)>();
        foreach (var name in names)
        {
            rows.Add(await MeasureAsync(name, count, Measure.Arg(args, "--hold", 0)));
        }
        Console.WriteLine($"{count:N0} idle joined hub connections, {TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores; MiB after a full GC");
        Console.WriteLine();
        Console.WriteLine("| server | fresh: RSS / PSS / private (managed heap) | joined: RSS / PSS / private (managed heap) | per connection: RSS / PSS / private / managed heap |");
        Console.WriteLine("| --- | --- | --- | --- |");
        foreach (var (name, fresh, joined) in rows)
        {
            Console.WriteLine($"| {name} | {fresh} | {joined} | {PerConnection(joined.Rss - fresh.Rss, count)} / {PerConnection(joined.Pss - fresh.Pss, count)} / " +
                $"{PerConnection(joined.Private - fresh.Private, count)} / {PerConnection(joined.Heap - fresh.Heap, count)} KiB |");
        }
        if (rows.Count == 2)
        {
            var (a, b) = (rows[0], rows[1]);
            Console.WriteLine();
            Console.WriteLine($"{a.Name} / {b.Name}: private per connection {(a.Joined.Private - a.Fresh.Private) / (b.Joined.Private - b.Fresh.Private):0.00}x, fresh private {a.Fresh.Private / b.Fresh.Private:0.00}x");
        }
    }

    private static string PerConnection(double megabytes, int count) => (megabytes * 1024 / count).ToString("0.0", CultureInfo.InvariantCulture);

    private static async Task<(string, Memory, Memory)> MeasureAsync(string name, int count, int hold)
    {
        var data = Path.Combine(Path.GetTempPath(), "covibe-idle-" + Guid.NewGuid().ToString("N")[..8]);
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = name switch
        {
            "covibe" => Measure.StartServer(data, url, "--Covibe:Hub:MaxConnectionsPerMember=10000", "--Covibe:Auth:AttemptsPerMinute=100000"),
            "bare" => Bare(url, data),
            _ => throw new ArgumentException($"Unknown server '{name}': covibe or bare."),
        };
        var sockets = new List<ClientWebSocket>();
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var token = name == "covibe" ? await Measure.CreateTeamAsync(http) : null;
            // Warm up the hub's code paths with a few connections, then measure from a settled heap.
            await OpenAsync(sockets, url, token, 20);
            var fresh = await SettledAsync(server.Id);
            await OpenAsync(sockets, url, token, count);
            var joined = await SettledAsync(server.Id);
            // --hold S: keep the connections open S seconds more, to look at the server with a profiler.
            await Task.Delay(TimeSpan.FromSeconds(hold));
            return (name, fresh, joined);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Abort();
                socket.Dispose();
            }
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private static Process Bare(string url, string data)
    {
        var info = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Covibe.Bench.dll"), "bare-server", "--port",
            new Uri(url).Port.ToString(CultureInfo.InvariantCulture), "--claude", "/bin/true", "--data", data]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Joined connections: Covibe's join with the bearer header at once; the bare server's on their first message.</summary>
    private static async Task OpenAsync(List<ClientWebSocket> sockets, string url, string? token, int count)
    {
        var buffer = new byte[1024];
        for (var i = 0; i < count; i++)
        {
            var socket = new ClientWebSocket();
            if (token is not null)
            {
                socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
            }
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{new Uri(url).Port}/ws"), CancellationToken.None);
            if (token is null)
            {
                await socket.SendAsync("{\"type\":\"join_team\"}"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
            }
            await socket.ReceiveAsync(buffer, CancellationToken.None); // team_joined
            sockets.Add(socket);
        }
    }

    /// <summary>The server's memory after a moment to settle and a full, blocking GC it is made to run.</summary>
    private static async Task<Memory> SettledAsync(int pid)
    {
        await Task.Delay(2000);
        var heap = await ForceGcAsync(pid);
        await Task.Delay(1000);
        return Memory.Of(pid) with { Heap = heap };
    }

    /// <summary>
    /// An EventPipe session with the GCHeapCollect keyword makes the runtime run a full blocking GC (dotnet-gcdump's way);
    /// its end says how big the managed heap is after it (megabytes). Throws if no induced GC was seen.
    /// </summary>
    private static async Task<double> ForceGcAsync(int pid)
    {
        const long gc = 0x1, gcHeapCollect = 0x800000;
        var client = new DiagnosticsClient(pid);
        using var session = client.StartEventPipeSession([new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, gc | gcHeapCollect)], requestRundown: false);
        using var source = new Microsoft.Diagnostics.Tracing.EventPipeEventSource(session.EventStream);
        var induced = false;
        double heap = -1;
        source.Clr.GCStart += e => induced |= e.Reason == Microsoft.Diagnostics.Tracing.Parsers.Clr.GCReason.Induced && e.Depth == 2;
        source.Clr.GCHeapStats += e => heap = induced && heap < 0 ? e.TotalHeapSize / 1048576.0 : heap;
        var reading = Task.Run(source.Process);
        for (var waited = 0; heap < 0 && waited < 10_000; waited += 100)
        {
            await Task.Delay(100);
        }
        await session.StopAsync(CancellationToken.None);
        await reading;
        return heap >= 0 ? heap : throw new InvalidOperationException("The server ran no full GC when asked (no induced gen 2 GC seen over EventPipe).");
    }

    /// <summary>Megabytes by three rulers (see the class summary).</summary>
    private readonly record struct Memory(double Rss, double Pss, double Private, double Heap = 0)
    {
        public static Memory Of(int pid)
        {
            var status = File.ReadAllLines($"/proc/{pid}/status");
            var rollup = File.ReadAllLines($"/proc/{pid}/smaps_rollup");
            return new Memory(Kb(status, "VmRSS:"), Kb(rollup, "Pss:"), Kb(status, "RssAnon:") + Kb(status, "RssShmem:"));
        }

        private static double Kb(string[] lines, string name) =>
            long.Parse(lines.First(l => l.StartsWith(name, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;

        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Rss:0} / {Pss:0} / {Private:0} (heap {Heap:0.0})");
    }
}
