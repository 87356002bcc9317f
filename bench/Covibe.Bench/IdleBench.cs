using System.Diagnostics;
using System.Net.WebSockets;

/// <summary>
/// Idle cost (issue 11): memory of a real <c>covibe serve</c> per joined hub connection that sends
/// and receives nothing, measured as the server's RSS after opening N connections minus before.
///   dotnet run -c Release --project bench/Covibe.Bench -- idle [--connections 2000]
/// </summary>
static class IdleBench
{
    public static async Task RunAsync(string[] args)
    {
        var count = Measure.Arg(args, "--connections", 2000);
        var data = Path.Combine(Path.GetTempPath(), "covibe-idle-" + Guid.NewGuid().ToString("N")[..8]);
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(data, url, "--Covibe:Hub:MaxConnectionsPerMember=10000", "--Covibe:Auth:AttemptsPerMinute=100000");
        var sockets = new List<ClientWebSocket>();
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var token = await Measure.CreateTeamAsync(http);
            // Warm up the hub's code paths with a few connections, then measure from a settled heap.
            await OpenAsync(sockets, url, token, 20);
            await Task.Delay(2000);
            var before = RssMegabytes(server.Id);
            await OpenAsync(sockets, url, token, count);
            await Task.Delay(3000);
            var after = RssMegabytes(server.Id);
            Console.WriteLine($"| idle joined hub connections | {count:N0} |");
            Console.WriteLine($"| server RSS before / after | {before:0} MiB / {after:0} MiB |");
            Console.WriteLine($"| idle cost per connection | {(after - before) * 1024 / count:0.0} KiB |");
            // --hold S: keep the connections open S seconds more, to look at the server with a profiler.
            await Task.Delay(TimeSpan.FromSeconds(Measure.Arg(args, "--hold", 0)));
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
            Directory.Delete(data, recursive: true);
        }
    }

    private static async Task OpenAsync(List<ClientWebSocket> sockets, string url, string token, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{new Uri(url).Port}/ws"), CancellationToken.None);
            sockets.Add(socket);
        }
    }

    private static double RssMegabytes(int pid) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024.0).Single();
}
