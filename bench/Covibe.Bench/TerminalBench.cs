using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

/// <summary>
/// Terminal benchmark (issue 6) against a real <c>covibe terminald</c> process on loopback:
/// keystroke echo latency (a key sent as an <c>input</c> message until its echo comes back as
/// <c>output</c>; the program echoing is <c>cat</c> on a raw-mode terminal, as an editor would) and
/// bulk throughput (<c>cat</c> of a large file, PTY to WebSocket client).
/// </summary>
static class TerminalBench
{
    public static async Task RunAsync(string[] args)
    {
        var keystrokes = Measure.Arg(args, "--keystrokes", 2000);
        var megabytes = Measure.Arg(args, "--megabytes", 100);
        var root = Directory.CreateTempSubdirectory("covibe-terminal-bench-").FullName;
        var port = Measure.FreePort();
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(48));
        var daemon = Start(port, secret, root);
        try
        {
            await Measure.WaitHealthyAsync($"http://127.0.0.1:{port}");
            using var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader("Authorization", $"Bearer {Token(secret)}");
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/"), CancellationToken.None);
            var client = new Client(socket);

            // Echo latency.
            await client.SendAsync("""{"type":"session","action":"create","id":"echo","config":{"shell":"/bin/sh","cols":120,"rows":40}}""");
            await client.SendAsync("""{"type":"command","id":"c1","session":"echo","command":"stty raw -echo; cat"}""");
            await Task.Delay(1000);
            await client.DrainAsync(TimeSpan.FromMilliseconds(300));
            var latencies = new List<long>();
            for (var i = 0; i < keystrokes + 200; i++)
            {
                var key = (char)('a' + (i % 26));
                var watch = Stopwatch.StartNew();
                await client.SendAsync($$"""{"type":"input","session":"echo","data":"{{key}}"}""");
                await client.OutputUntilAsync(data => data.Contains(key, StringComparison.Ordinal));
                if (i >= 200)
                {
                    latencies.Add((long)(watch.Elapsed.TotalMilliseconds * 1000));
                }
            }
            await client.SendAsync("""{"type":"session","action":"close","id":"echo"}""");
            var sorted = latencies.Order().ToArray();

            // Throughput: cat of a big file.
            var file = Path.Combine(root, "big.txt");
            var line = new string('x', 79) + "\n";
            await using (var writer = new StreamWriter(file, false, Encoding.ASCII))
            {
                for (long written = 0; written < megabytes * 1024L * 1024; written += line.Length)
                {
                    await writer.WriteAsync(line);
                }
            }
            var fileBytes = new FileInfo(file).Length;
            await client.SendAsync("""{"type":"session","action":"create","id":"bulk","config":{"shell":"/bin/sh","cols":120,"rows":40}}""");
            await Task.Delay(500);
            await client.DrainAsync(TimeSpan.FromMilliseconds(300));
            var cpuBefore = Measure.CpuSeconds(daemon.Id);
            var splitBefore = Measure.CpuSplit(daemon.Id);
            var clientCpuBefore = Measure.CpuSeconds(Environment.ProcessId);
            var bulk = Stopwatch.StartNew();
            client.Received = 0;
            client.Frames = 0;
            await client.SendAsync("""{"type":"command","id":"c2","session":"bulk","command":"cat big.txt; echo done-$((40+2))"}""");
            var tail = "";
            await client.OutputUntilAsync(data =>
            {
                tail = (tail + data)[^Math.Min(tail.Length + data.Length, 32)..];
                return tail.Contains("done-42", StringComparison.Ordinal);
            });
            bulk.Stop();
            var cpu = Measure.CpuSeconds(daemon.Id) - cpuBefore;
            var splitAfter = Measure.CpuSplit(daemon.Id);
            var mib = client.Received / 1048576.0;

            Console.WriteLine($"| keystrokes (after 200 warm-up) | {latencies.Count:N0} |");
            Console.WriteLine($"| echo latency p50 / p99 / max | {sorted[sorted.Length / 2] / 1000.0:0.00} ms / {Measure.Percentile(sorted, 0.99) / 1000.0:0.00} ms / {sorted[^1] / 1000.0:0.00} ms |");
            Console.WriteLine($"| bulk output | cat of {fileBytes / 1048576.0:0} MiB: {mib:0.0} MiB received (with CR before each LF) in {bulk.Elapsed.TotalSeconds:0.00} s = **{mib / bulk.Elapsed.TotalSeconds:0} MiB/s**, {client.Frames:N0} output messages |");
            Console.WriteLine($"| daemon CPU during bulk | {cpu:0.0} s ({cpu / bulk.Elapsed.TotalSeconds * 100:0}% of one core; user {splitAfter.User - splitBefore.User:0.00} s, system {splitAfter.System - splitBefore.System:0.00} s) |");
            Console.WriteLine($"| benchmark client CPU during bulk | {Measure.CpuSeconds(Environment.ProcessId) - clientCpuBefore:0.0} s |");
            Console.WriteLine($"| daemon peak RSS | {Measure.PeakRssMegabytes(daemon.Id):0} MiB |");
            await client.SendAsync("""{"type":"session","action":"close","id":"bulk"}""");
            await client.DrainAsync(TimeSpan.FromMilliseconds(500));

            // Churn: thousands of sessions opened and ended leave no process, zombie or descriptor behind.
            var churn = Measure.Arg(args, "--sessions", 2000);
            var descriptorsBefore = Directory.GetFiles($"/proc/{daemon.Id}/fd").Length;
            var churnWatch = Stopwatch.StartNew();
            for (var i = 0; i < churn; i++)
            {
                await client.SendAsync($$$"""{"type":"session","action":"create","id":"churn-{{{i}}}","config":{"shell":"/bin/sh"}}""");
                await client.SendAsync($$"""{"type":"command","id":"x","session":"churn-{{i}}","command":"exit {{i % 3}}"}""");
                await client.UntilAsync("session", m => m.Contains("\"exited\"", StringComparison.Ordinal) && m.Contains($"\"churn-{i}\"", StringComparison.Ordinal));
            }
            churnWatch.Stop();
            await Task.Delay(500);
            var descriptorsAfter = Directory.GetFiles($"/proc/{daemon.Id}/fd").Length;
            var children = File.ReadAllText($"/proc/{daemon.Id}/task/{daemon.Id}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            Console.WriteLine($"| session churn | {churn:N0} sessions opened, run and exited in {churnWatch.Elapsed.TotalSeconds:0.0} s ({churnWatch.Elapsed.TotalMilliseconds / churn:0.0} ms each); daemon descriptors {descriptorsBefore} before, {descriptorsAfter} after; child processes left: {children} |");
        }
        finally
        {
            daemon.Kill(entireProcessTree: true);
            await daemon.WaitForExitAsync();
            Directory.Delete(root, recursive: true);
        }
    }

    private static Process Start(int port, string secret, string root)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "covibe.dll"));
        info.ArgumentList.Add("terminald");
        // The echo run sends keys as fast as they come back (thousands a second, no person types
        // that fast); the per-connection message limit is not what is measured.
        info.ArgumentList.Add("--Covibe:Terminals:MessagesPerSecond=100000");
        info.Environment["PORT"] = port.ToString(CultureInfo.InvariantCulture);
        info.Environment["HOST"] = "127.0.0.1";
        info.Environment["JWT_SECRET"] = secret;
        info.Environment["TERMINAL_ROOT"] = root;
        info.Environment["LOG_LEVEL"] = "warn";
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine($"terminald: {e.Data}"); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static string Token(string secret) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Expires = TimeProvider.System.GetUtcNow().UtcDateTime.AddHours(1),
        Claims = new Dictionary<string, object> { ["sub"] = "bench" },
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256),
    });

    /// <summary>A reader loop parses every frame into (type, data); waits read from its queue (cancelling a socket read would abort the socket).</summary>
    private sealed class Client
    {
        private readonly ClientWebSocket _socket;
        // (type, data: an output's last characters, which is all the checks look at, else the whole message; output bytes)
        private readonly System.Threading.Channels.Channel<(string Type, string Data, int Bytes)> _messages = System.Threading.Channels.Channel.CreateUnbounded<(string, string, int)>();
        private readonly byte[] _unescaped = new byte[1024 * 1024];
        private readonly byte[] _buffer = new byte[4 * 1024 * 1024];

        public Client(ClientWebSocket socket)
        {
            _socket = socket;
            Reader = ReadLoopAsync();
        }

        public Task Reader { get; }

        public long Received { get; set; }

        public long Frames { get; set; }

        public Task SendAsync(string json) =>
            _socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None);

        /// <summary>Reads messages until an output's data satisfies <paramref name="done"/>; counts output bytes.</summary>
        public async Task OutputUntilAsync(Func<string, bool> done)
        {
            while (true)
            {
                var (type, data, bytes) = await _messages.Reader.ReadAsync();
                if (type == "output")
                {
                    Received += bytes;
                    Frames++;
                    if (done(data))
                    {
                        return;
                    }
                }
                else if (type == "error")
                {
                    throw new InvalidOperationException(data);
                }
            }
        }

        /// <summary>Reads messages until one of <paramref name="type"/> whose JSON satisfies <paramref name="done"/>.</summary>
        public async Task UntilAsync(string type, Func<string, bool> done)
        {
            while (true)
            {
                var (t, data, _) = await _messages.Reader.ReadAsync();
                if (t == type && done(data))
                {
                    return;
                }
                if (t == "error")
                {
                    throw new InvalidOperationException(data);
                }
            }
        }

        public async Task DrainAsync(TimeSpan quiet)
        {
            while (true)
            {
                using var cts = new CancellationTokenSource(quiet);
                try
                {
                    await _messages.Reader.ReadAsync(cts.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }

        /// <summary>
        /// Reads a message as a client must (the whole JSON, data unescaped) without making strings
        /// of 100 MB of output: the benchmark's client shares the daemon's two cores.
        /// </summary>
        private (string Type, string Data, int Bytes) Parse(ReadOnlySpan<byte> json)
        {
            var reader = new Utf8JsonReader(json);
            string? type = null;
            var bytes = 0;
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
                {
                    continue;
                }
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    type = reader.GetString();
                }
                else if (reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    bytes = reader.CopyString(_unescaped);
                }
            }
            return type == "output"
                ? ("output", Encoding.UTF8.GetString(_unescaped, Math.Max(0, bytes - 64), Math.Min(bytes, 64)), bytes)
                : (type ?? "?", Encoding.UTF8.GetString(json), 0);
        }

        private async Task ReadLoopAsync()
        {
            try
            {
                while (true)
                {
                    var (count, closed) = await Measure.ReceiveMessageAsync(_socket, _buffer);
                    if (closed)
                    {
                        break;
                    }
                    _messages.Writer.TryWrite(Parse(_buffer.AsSpan(0, count)));
                }
            }
            catch (WebSocketException)
            {
            }
            finally
            {
                _messages.Writer.TryComplete();
            }
        }
    }
}
