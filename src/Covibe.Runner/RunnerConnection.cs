using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Covibe.Execution;
using Covibe.Protocol;

namespace Covibe.Runner;

/// <summary>
/// The runner's connection to its server: a WebSocket (or, when that cannot get through, HTTPS long polls carrying the
/// same messages), taken up again with backoff whenever it drops. Each connection starts with hello; the server's
/// welcome says which agents to send output for and from which byte, so what a drop cut off is sent again and nothing twice.
/// Agents run on regardless: they are detached, and their logs are the truth.
/// </summary>
public sealed partial class RunnerConnection : IAsyncDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    private readonly Action<RunnerState> _save;
    private readonly string _transport;
    private readonly FileChanges _changes = new();
    private readonly RunnerAgents _agents;
    private readonly RunnerShells _shells;
    private readonly RunnerTrees _trees;
    private readonly HttpClient _http;
    private RunnerState _state;
    private bool _usePolling;

    /// <summary><paramref name="save"/> keeps a rotated credential (encrypted: the CLI's credential store).</summary>
    public RunnerConnection(RunnerState state, string transport, Action<RunnerState> save)
    {
        _save = save;
        _state = state;
        _transport = transport;
        _usePolling = transport == "poll";
        var home = Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } h ? Path.GetFullPath(h) : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        _agents = new RunnerAgents(home, _changes);
        _shells = new RunnerShells(home);
        _trees = new RunnerTrees(home);
        _http = new HttpClient { BaseAddress = new Uri(state.Server.TrimEnd('/') + "/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Runs until cancelled (0) or the server refuses the credential for good (3).</summary>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!cancellationToken.IsCancellationRequested)
        {
            var outbound = Channel.CreateBounded<RunnerMessage>(new BoundedChannelOptions(256) { SingleReader = true });
            using var connection = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Outcome outcome;
            try
            {
                outcome = _usePolling ? await PollAsync(outbound, connection.Token) : await WebSocketAsync(outbound, connection.Token);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return 0;
            }
            finally
            {
                await connection.CancelAsync();
                outbound.Writer.TryComplete();
                _agents.ForgetAll();
                _shells.CloseAll();
            }
            switch (outcome.Kind)
            {
                case OutcomeKind.Refused:
                    await Console.Error.WriteLineAsync($"covibe runner: {outcome.Message} Stopping.");
                    return 3;
                case OutcomeKind.Welcomed:
                    backoff = TimeSpan.FromSeconds(1); // it worked: the next drop retries soon
                    break;
                case OutcomeKind.NoWebSocket when _transport == "auto":
                    await Console.Error.WriteLineAsync($"covibe runner: WebSockets do not get through ({outcome.Message}); using HTTPS long polling.");
                    _usePolling = true;
                    continue;
            }
            var wait = backoff + TimeSpan.FromMilliseconds(Random.Shared.Next(0, (int)(backoff.TotalMilliseconds / 4) + 1));
            await Console.Error.WriteLineAsync($"covibe runner: disconnected ({outcome.Message}); reconnecting in {wait.TotalSeconds:0.#} s.");
            try
            {
                await Task.Delay(wait, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return 0;
            }
            backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
        }
        return 0;
    }

    private enum OutcomeKind { Dropped, Welcomed, Refused, NoWebSocket }

    private sealed record Outcome(OutcomeKind Kind, string Message);

    private static void Hello(ChannelWriter<RunnerMessage> outbound) =>
        outbound.TryWrite(new RunnerMessage(RunnerProtocol.Hello, Version: RunnerProtocol.Version, Hostname: Dns.GetHostName(), User: Environment.UserName));

    private int _heartbeatSeconds = 15;

    private async Task HeartbeatAsync(ChannelWriter<RunnerMessage> outbound, CancellationToken cancellationToken)
    {
        try
        {
            // Checked every second against the interval the server's welcome set (it may be shorter than the default this
            // started with): a first wait of the default would let a short lease run out before the first heartbeat.
            var last = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
                if (last.Elapsed >= TimeSpan.FromSeconds(_heartbeatSeconds))
                {
                    last.Restart();
                    await outbound.WriteAsync(new RunnerMessage(RunnerProtocol.Heartbeat), cancellationToken);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
        }
    }

    private static RunnerMessage? Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, CovibeJsonContext.Default.RunnerMessage);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>One message from the server. Work that takes time runs on its own, so heartbeats and output keep flowing.</summary>
    private void Dispatch(RunnerMessage message, ChannelWriter<RunnerMessage> outbound, CancellationToken cancellationToken)
    {
        switch (message.Type)
        {
            case RunnerProtocol.Welcome:
                _heartbeatSeconds = Math.Clamp(message.HeartbeatSeconds ?? 15, 1, 300);
                foreach (var follow in message.Follow ?? [])
                {
                    _agents.Follow(follow, outbound);
                }
                break;
            case RunnerProtocol.Follow when message.AgentId is { } agentId && message.Offset is { } from:
                // The server missed something: from its end, again (the follower knows the process).
                _agents.Refollow(agentId, from, outbound);
                break;
            case RunnerProtocol.Start:
                _ = Reply(outbound, _agents.StartAsync(message, outbound, cancellationToken), cancellationToken);
                break;
            case RunnerProtocol.TreeData:
                _ = Reply(outbound, _trees.TakeAsync(message, cancellationToken), cancellationToken);
                break;
            case RunnerProtocol.Run:
                _ = Reply(outbound, RunnerTrees.RunAsync(message, cancellationToken), cancellationToken);
                break;
            case RunnerProtocol.Input:
                _ = Reply(outbound, _agents.InputAsync(message, cancellationToken), cancellationToken);
                break;
            case RunnerProtocol.Signal:
                _ = Reply(outbound, _agents.SignalAsync(message, cancellationToken), cancellationToken);
                break;
            case RunnerProtocol.TerminalOpen:
                _ = Reply(outbound, Task.Run(() => _shells.Open(message, outbound), cancellationToken), cancellationToken);
                break;
            case RunnerProtocol.TerminalInput:
                _shells.Input(message);
                break;
            case RunnerProtocol.TerminalResize:
                _shells.Resize(message);
                break;
            case RunnerProtocol.TerminalClose:
                _shells.Close(message.TerminalId);
                break;
            case RunnerProtocol.Rotate:
                _ = RotateAsync(cancellationToken);
                break;
            case RunnerProtocol.Error:
                Console.Error.WriteLine($"covibe runner: the server says: {message.Error}");
                break;
        }
    }

    private static async Task Reply(ChannelWriter<RunnerMessage> outbound, Task<RunnerMessage> work, CancellationToken cancellationToken)
    {
        RunnerMessage? reply;
        try
        {
            reply = await work;
        }
        catch (Exception e) when (e is IOException or FormatException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            reply = null;
            Console.Error.WriteLine($"covibe runner: {e.Message}");
        }
        catch (OperationCanceledException)
        {
            return;
        }
        if (reply is not null)
        {
            try
            {
                await outbound.WriteAsync(reply, cancellationToken);
            }
            catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
            {
            }
        }
    }

    /// <summary>Rotates the credential without downtime: get a new one, save it, prove it (the old one then stops working).</summary>
    private async Task RotateAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "api/runner/rotate");
            request.Headers.Authorization = new("Bearer", _state.Credential);
            using var reply = await _http.SendAsync(request, cancellationToken);
            if (!reply.IsSuccessStatusCode)
            {
                await Console.Error.WriteLineAsync($"covibe runner: rotating the credential failed: {await ProblemText.DescribeAsync(reply, cancellationToken)}");
                return;
            }
            var rotated = (await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.RunnerRotateResponse, cancellationToken))!;
            var state = _state with { Credential = rotated.Credential };
            _save(state);
            _state = state;
            using var confirm = new HttpRequestMessage(HttpMethod.Post, "api/runner/confirm");
            confirm.Headers.Authorization = new("Bearer", state.Credential);
            using var confirmed = await _http.SendAsync(confirm, cancellationToken);
            await Console.Out.WriteLineAsync(confirmed.IsSuccessStatusCode
                ? "covibe runner: credential rotated; the old one no longer works."
                : $"covibe runner: the new credential was saved, but confirming it failed: {await ProblemText.DescribeAsync(confirmed, cancellationToken)}");
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            await Console.Error.WriteLineAsync($"covibe runner: rotating the credential failed: {e.Message}");
        }
    }

    public ValueTask DisposeAsync()
    {
        _agents.Dispose();
        _shells.Dispose();
        _changes.Dispose();
        _http.Dispose();
        return ValueTask.CompletedTask;
    }
}
