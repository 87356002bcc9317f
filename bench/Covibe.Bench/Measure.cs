using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;

/// <summary>What the benchmarks measure about a process, and small helpers they share.</summary>
static class Measure
{
    /// <summary>User and system CPU seconds of a process (fields 14 and 15 of /proc/PID/stat).</summary>
    public static (double User, double System) CpuSplit(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) / 100.0, long.Parse(fields[12], CultureInfo.InvariantCulture) / 100.0);
    }

    public static double CpuSeconds(int pid) => Cpu(pid).Total;

    /// <summary>A process's user and system CPU so far, in seconds.</summary>
    public static CpuTime Cpu(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // utime and stime (fields 14 and 15), in clock ticks (100 per second on Linux).
        return new CpuTime(long.Parse(fields[11], CultureInfo.InvariantCulture) / 100.0, long.Parse(fields[12], CultureInfo.InvariantCulture) / 100.0);
    }

    public static double PeakRssMegabytes(int pid) => StatusMegabytes(pid, "VmHWM:");

    /// <summary>The process's resident set now (RSS), in MiB.</summary>
    public static double RssMegabytes(int pid) => StatusMegabytes(pid, "VmRSS:");

    private static double StatusMegabytes(int pid, string field) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith(field, StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0).Single();

    public static long Percentile(long[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[(int)Math.Min(sorted.Length - 1, Math.Ceiling(p * sorted.Length) - 1)];

    /// <summary>Runs <paramref name="program"/> to its end; its standard output, or null if it failed.</summary>
    public static async Task<string?> RunAsync(string program, params string[] args)
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0 ? output : null;
    }

    /// <summary>
    /// A free port below the ephemeral range (32768-60999): a server restarted on it finds it free again, where a port
    /// from that range may meanwhile be the local end of some client's connection (the cluster benchmark's rolling
    /// restart met one: "address already in use").
    /// </summary>
    public static int FreePort()
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = Random.Shared.Next(20_000, 32_000);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException) when (attempt < 100)
            {
                // Taken: try another.
            }
        }
    }

    public static int Arg(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>
    /// A real <c>covibe serve --dev</c> on <paramref name="data"/> and <paramref name="url"/>, quiet, with
    /// <paramref name="settings"/> as flags; its errors go to stderr (prefixed), its output nowhere.
    /// </summary>
    public static System.Diagnostics.Process StartServer(string data, string url, params string[] settings) =>
        StartServerFrom(Path.Combine(AppContext.BaseDirectory, "covibe.dll"), data, url, settings);

    /// <summary>A server of another build (<paramref name="dll"/>: its <c>covibe.dll</c>), e.g. the previous release's.</summary>
    public static System.Diagnostics.Process StartServerFrom(string dll, string data, string url, params string[] settings)
    {
        var (program, prefix) = Pinning.Wrap("dotnet");
        var info = new System.Diagnostics.ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[.. prefix, dll, "serve", "--dev", "--data", data, "--urls", url,
            "--Logging:LogLevel:Default=Warning", .. settings])
        {
            info.ArgumentList.Add(a);
        }
        // As the ./covibe launcher runs it (an 8 MiB gen0 budget, see there).
        info.Environment["DOTNET_GCgen0size"] = "0x800000";
        // COVIBE_BENCH_SERVER_ENV="NAME=value;NAME=value" sets environment variables for the server alone
        // (runtime knobs such as DOTNET_GCgen0size, without changing the benchmark's own client).
        foreach (var pair in (Environment.GetEnvironmentVariable("COVIBE_BENCH_SERVER_ENV") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            info.Environment[pair[..eq]] = pair[(eq + 1)..];
        }
        var process = System.Diagnostics.Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine($"server: {e.Data}"); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Creates the benchmark's team on a fresh <c>--dev</c> server; <paramref name="http"/> then sends its owner's token.</summary>
    public static async Task<string> CreateTeamAsync(HttpClient http) => (await TeamAsync(http)).Auth.AccessToken;

    /// <summary>As <see cref="CreateTeamAsync"/>, with all the server says of the team (its id, the invite).</summary>
    public static async Task<Covibe.Protocol.CreateTeamResponse> TeamAsync(HttpClient http)
    {
        using var reply = await http.PostAsJsonAsync("/api/team/create", new Covibe.Protocol.CreateTeamRequest("Bench", "Bench", "bench@example.com", "benchmark-password"));
        var team = (await reply.Content.ReadFromJsonAsync(Covibe.Protocol.CovibeJsonContext.Default.CreateTeamResponse))!;
        http.DefaultRequestHeaders.Authorization = new("Bearer", team.Auth.AccessToken);
        return team;
    }

    /// <summary>Waits (up to a minute) until <c>GET {url}/health</c> answers 200.</summary>
    public static async Task WaitHealthyAsync(string url)
    {
        using var probe = new HttpClient();
        for (var i = 0; i < 600; i++)
        {
            try
            {
                if ((await probe.GetAsync($"{url}/health")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{url} did not start");
    }

    /// <summary>A hub connection to <paramref name="url"/> as the bearer of <paramref name="token"/>, joined to its team.</summary>
    public static async Task<System.Net.WebSockets.ClientWebSocket> JoinHubAsync(string url, string token, bool followAgents)
    {
        var hub = new System.Net.WebSockets.ClientWebSocket();
        hub.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        await hub.ConnectAsync(new Uri($"ws://127.0.0.1:{new Uri(url).Port}/ws"), CancellationToken.None);
        await hub.SendAsync(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new Covibe.Protocol.JoinTeamMessage(null, token, FollowAgents: followAgents),
            Covibe.Protocol.CovibeJsonContext.Default.JoinTeamMessage), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        return hub;
    }

    /// <summary>Reads one whole WebSocket message into <paramref name="buffer"/>: its length, and whether it was the close.</summary>
    public static async Task<(int Count, bool Closed)> ReceiveMessageAsync(System.Net.WebSockets.WebSocket socket, byte[] buffer)
    {
        var count = 0;
        System.Net.WebSockets.ValueWebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
            count += result.Count;
        }
        while (!result.EndOfMessage);
        return (count, result.MessageType == System.Net.WebSockets.WebSocketMessageType.Close);
    }

    /// <summary>Reads the hub's messages until it closes, handing each one of <paramref name="type"/> to <paramref name="handle"/> with the moment it arrived.</summary>
    public static Task ListenAsync(System.Net.WebSockets.WebSocket hub, string type, Action<System.Text.Json.JsonElement, long> handle, int bufferBytes = 4 * 1024 * 1024) =>
        Task.Run(async () =>
        {
            var buffer = new byte[bufferBytes];
            while (true)
            {
                var (count, closed) = await ReceiveMessageAsync(hub, buffer);
                if (closed)
                {
                    return;
                }
                var now = System.Diagnostics.Stopwatch.GetTimestamp();
                using var message = System.Text.Json.JsonDocument.Parse(buffer.AsMemory(0, count));
                if (message.RootElement.GetProperty("type").GetString() == type)
                {
                    handle(message.RootElement, now);
                }
            }
        });
}

/// <summary>CPU time in seconds, in user mode and in the kernel.</summary>
readonly record struct CpuTime(double User, double System)
{
    public double Total => User + System;

    public static CpuTime operator -(CpuTime a, CpuTime b) => new(a.User - b.User, a.System - b.System);
}

/// <summary>
/// Benchmark hygiene: where the machine has two cores or more, the server under test (and the agent it starts) runs on the
/// last core alone (<c>taskset</c>) and the benchmark's clients on the others, so neither steals the other's time.
/// </summary>
static class Pinning
{
    /// <summary>The server's core, or null when not pinned.</summary>
    public static int? Server { get; private set; }

    /// <summary>Pins this process (every thread) to all cores but the last, which servers started later get.</summary>
    public static void Apply(bool pin)
    {
        var cores = Environment.ProcessorCount;
        if (!pin || cores < 2 || !File.Exists("/usr/bin/taskset"))
        {
            return;
        }
        Server = cores - 1;
        var mine = cores == 2 ? "0" : $"0-{cores - 2}";
        using var taskset = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("taskset", ["-a", "-p", "-c", mine, Environment.ProcessId.ToString(CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
        })!;
        taskset.WaitForExit();
        if (taskset.ExitCode != 0)
        {
            throw new InvalidOperationException("taskset could not pin the benchmark's clients.");
        }
    }

    /// <summary>The program to run and the arguments before its own, on the server's core when pinned.</summary>
    public static (string Program, string[] Prefix) Wrap(string program) =>
        Server is { } core ? ("taskset", ["-c", core.ToString(CultureInfo.InvariantCulture), program]) : (program, []);
}
