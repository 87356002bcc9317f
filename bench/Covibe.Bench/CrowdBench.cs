using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;

/// <summary>
/// Chat under a crowd (issue 28): one member holds N hub sockets (a heavy client: many tabs, a script), each joined and
/// reading; two teammates chat. For each message, the round trip from the sender's send to the sender's own echo and to
/// the other teammate's receipt, with no crowd and with it, in the same run on one server (pinned as the fan-out is).
///   crowd [--sockets 1000] [--messages 300]
/// </summary>
static class CrowdBench
{
    public static async Task RunAsync(string[] args)
    {
        var crowd = Measure.Arg(args, "--sockets", 1000);
        var messages = Measure.Arg(args, "--messages", 300);
        Pinning.Apply(!args.Contains("--no-pin"));
        var data = Path.Combine(Path.GetTempPath(), "covibe-crowd-" + Guid.NewGuid().ToString("N")[..8]);
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        using var server = Measure.StartServer(data, url, "--Covibe:Hub:MaxConnectionsPerMember=10000", "--Covibe:Auth:AttemptsPerMinute=100000");
        var sockets = new List<ClientWebSocket>();
        using var stop = new CancellationTokenSource();
        var readers = new List<Task>();
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var team = await Measure.TeamAsync(http);
            var sender = await JoinAsync(http, team.Invite.InviteCode, "Sarah");
            var receiver = await JoinAsync(http, team.Invite.InviteCode, "Miguel");
            await using var a = await Chatter.ConnectAsync(url, sender);
            await using var b = await Chatter.ConnectAsync(url, receiver);
            var quiet = await ChatAsync(a, b, messages);

            var opening = Stopwatch.StartNew();
            for (var i = 0; i < crowd; i++)
            {
                var socket = new ClientWebSocket();
                socket.Options.SetRequestHeader("Authorization", $"Bearer {team.Auth.AccessToken}");
                await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{new Uri(url).Port}/ws"), CancellationToken.None);
                sockets.Add(socket);
                readers.Add(DrainAsync(socket, stop.Token));
            }
            opening.Stop();
            // Let the crowd's joins and the presence they cause settle first.
            await Task.Delay(2000);
            var cpuBefore = Measure.Cpu(server.Id);
            var busy = await ChatAsync(a, b, messages);
            var cpu = Measure.Cpu(server.Id) - cpuBefore;

            Console.WriteLine($"Chat round trips, {messages} messages one every 20 ms, {TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores; " +
                $"server pinned: {(Pinning.Server is { } core ? $"core {core}" : "no")}");
            Console.WriteLine();
            Console.WriteLine("| | to the sender's echo: p50 / p99 / max | to the teammate: p50 / p99 / max |");
            Console.WriteLine("| --- | --- | --- |");
            Console.WriteLine($"| no crowd | {quiet.Echo} | {quiet.Teammate} |");
            Console.WriteLine($"| one member holding {crowd:N0} hub sockets | {busy.Echo} | {busy.Teammate} |");
            Console.WriteLine();
            Console.WriteLine($"Crowd opened in {opening.Elapsed.TotalSeconds:0.0} s; server CPU while chatting with the crowd {cpu.Total:0.00} s (user {cpu.User:0.00}, system {cpu.System:0.00}); " +
                $"peak RSS {Measure.PeakRssMegabytes(server.Id):0} MiB");
        }
        finally
        {
            stop.Cancel();
            foreach (var socket in sockets)
            {
                socket.Abort();
                socket.Dispose();
            }
            await Task.WhenAll(readers);
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private static async Task<string> JoinAsync(HttpClient http, string inviteCode, string name)
    {
        using var reply = await http.PostAsJsonAsync("/api/auth/login", new LoginRequest($"{name.ToLowerInvariant()}@example.com", "benchmark-password", inviteCode, name));
        reply.EnsureSuccessStatusCode();
        return (await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.AuthResponse))!.AccessToken;
    }

    /// <summary>A crowd socket: reads everything, as a client that keeps up does.</summary>
    private static async Task DrainAsync(ClientWebSocket socket, CancellationToken stop)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), stop);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    private static async Task<(string Echo, string Teammate)> ChatAsync(Chatter a, Chatter b, int messages)
    {
        var echo = new List<double>();
        var teammate = new List<double>();
        for (var i = 0; i < messages; i++)
        {
            var text = $"crowd {Guid.NewGuid():N}";
            var sent = Stopwatch.GetTimestamp();
            var toB = b.WaitForAsync(text);
            await a.SendAsync(text);
            await a.WaitForAsync(text);
            echo.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
            await toB;
            teammate.Add(b.LastAt(text) - sent is var ticks && ticks > 0 ? ticks * 1000.0 / Stopwatch.Frequency : 0);
            await Task.Delay(20);
        }
        return (Summary(echo), Summary(teammate));
    }

    private static string Summary(List<double> ms)
    {
        ms.Sort();
        double At(double p) => ms[(int)Math.Min(ms.Count - 1, Math.Ceiling(p * ms.Count) - 1)];
        return string.Create(CultureInfo.InvariantCulture, $"{At(0.5):0.0} / {At(0.99):0.0} / {ms[^1]:0.0} ms");
    }

    /// <summary>A teammate's hub connection: sends chat and notes when each chat message arrives.</summary>
    private sealed class Chatter : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket;
        private readonly Dictionary<string, (long At, TaskCompletionSource Seen)> _seen = [];
        private readonly Lock _lock = new();
        private readonly Task _reading;

        private Chatter(ClientWebSocket socket)
        {
            _socket = socket;
            _reading = ReadAsync();
        }

        public static async Task<Chatter> ConnectAsync(string url, string token)
        {
            var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{new Uri(url).Port}/ws"), CancellationToken.None);
            return new Chatter(socket);
        }

        public Task SendAsync(string text) => _socket.SendAsync(
            JsonSerializer.SerializeToUtf8Bytes(new { type = "chat_message", message = text }), WebSocketMessageType.Text, true, CancellationToken.None);

        public Task WaitForAsync(string text) => Entry(text).Seen.Task.WaitAsync(TimeSpan.FromSeconds(30));

        public long LastAt(string text) => Entry(text).At;

        public async ValueTask DisposeAsync()
        {
            _socket.Abort();
            _socket.Dispose();
            await _reading.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        private (long At, TaskCompletionSource Seen) Entry(string text)
        {
            lock (_lock)
            {
                if (!_seen.TryGetValue(text, out var entry))
                {
                    _seen[text] = entry = (0, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                }
                return entry;
            }
        }

        private async Task ReadAsync()
        {
            var buffer = new byte[256 * 1024];
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await _socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                    count += result.Count;
                }
                while (!result.EndOfMessage);
                var at = Stopwatch.GetTimestamp();
                using var message = JsonDocument.Parse(buffer.AsMemory(0, count));
                if (message.RootElement.GetProperty("type").GetString() == "chat_message"
                    && message.RootElement.GetProperty("message").GetString() is { } text)
                {
                    lock (_lock)
                    {
                        var entry = _seen.TryGetValue(text, out var known) ? known : (0, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                        _seen[text] = (at, entry.Seen);
                        entry.Seen.TrySetResult();
                    }
                }
            }
        }
    }
}
