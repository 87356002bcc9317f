using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A real WebSocket client of the terminal protocol (seed 004). Output is gathered per session
/// into a transcript; every other message is kept in order for <see cref="ReceiveAsync(string, TimeSpan?)"/>.
/// </summary>
public sealed class TerminalClient : IAsyncDisposable
{
    private readonly HubClient _socket;
    private readonly Channel<JsonElement> _events = Channel.CreateUnbounded<JsonElement>();
    private readonly Dictionary<string, StringBuilder> _transcripts = [];
    private readonly Dictionary<string, long> _ends = [];
    private readonly List<JsonElement> _outputs = [];
    private readonly Lock _gate = new();
    private readonly Task _pump;
    private TaskCompletionSource _output = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TerminalClient(HubClient socket)
    {
        _socket = socket;
        _pump = PumpAsync();
    }

    public HubClient Socket => _socket;

    public static async Task<TerminalClient> ConnectAsync(Uri server, string path, string? bearer = null, string? origin = null) =>
        new(await HubClient.ConnectAsync(server, bearer, origin, read: true, path: path));

    public Task SendAsync(object message) => _socket.SendAsync(message);

    public Task SendTextAsync(string text) => _socket.SendTextAsync(text);

    /// <summary>Creates a session (attached), returning the <c>created</c> message.</summary>
    /// <param name="timeout">How long the terminal may take to open (a container's may have to start its container first).</param>
    public async Task<JsonElement> CreateAsync(string id, object? config = null, TimeSpan? timeout = null)
    {
        await SendAsync(new { type = "session", action = "create", id, config });
        var created = await ReceiveAsync(m => Is(m, "session", "created") || m.GetProperty("type").GetString() == "error", timeout, what: "created");
        created.GetProperty("type").GetString().ShouldBe("session", created.ToString());
        await ReceiveAsync(m => Is(m, "session", "attached") && m.GetProperty("id").GetString() == id, what: "attached");
        return created;
    }

    public Task CommandAsync(string session, string command, string? id = null) =>
        SendAsync(new { type = "command", id = id ?? Guid.NewGuid().ToString(), session, command });

    public Task InputAsync(string session, string data) => SendAsync(new { type = "input", session, data });

    /// <summary>All output of <paramref name="session"/> received so far.</summary>
    public string Transcript(string session)
    {
        lock (_gate)
        {
            return _transcripts.TryGetValue(session, out var text) ? text.ToString() : "";
        }
    }

    /// <summary>The session's transcript and the <c>end</c> of the last output in it, taken together.</summary>
    public (string Transcript, long End) Snapshot(string session)
    {
        lock (_gate)
        {
            return (Transcript(session), _ends.GetValueOrDefault(session));
        }
    }

    /// <summary>Every output message received, in order.</summary>
    public IReadOnlyList<JsonElement> Outputs
    {
        get
        {
            lock (_gate)
            {
                return [.. _outputs];
            }
        }
    }

    /// <summary>
    /// Waits until the session's transcript (from <paramref name="after"/> characters on) contains <paramref name="text"/>;
    /// returns the transcript from <paramref name="after"/> on. Each wake-up searches only what arrived since the last one, so
    /// waiting at the end of a transcript of a hundred megabytes costs what arrives, not the whole transcript again per frame.
    /// </summary>
    public async Task<string> OutputUntilAsync(string session, string text, TimeSpan? timeout = null, int after = 0)
    {
        var limit = timeout ?? HubClient.DefaultTimeout;
        using var cts = new CancellationTokenSource(limit);
        var searched = after;
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_transcripts.TryGetValue(session, out var transcript) && transcript.Length > searched)
                {
                    var from = Math.Max(after, searched - text.Length + 1);
                    if (transcript.ToString(from, transcript.Length - from).Contains(text, StringComparison.Ordinal))
                    {
                        return transcript.ToString(after, transcript.Length - after);
                    }
                    searched = transcript.Length;
                }
                changed = _output.Task;
            }
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"'{text}' did not appear in session {session} within {limit.TotalSeconds} s. Output so far ({Length(session)} characters), its end:\n{Tail(session, 2000)}");
            }
        }
    }

    /// <summary>How many characters of <paramref name="session"/>'s output have arrived.</summary>
    public int Length(string session)
    {
        lock (_gate)
        {
            return _transcripts.TryGetValue(session, out var text) ? text.Length : 0;
        }
    }

    /// <summary>The <c>end</c> of the last output of <paramref name="session"/> received, without copying the transcript.</summary>
    public long End(string session)
    {
        lock (_gate)
        {
            return _ends.GetValueOrDefault(session);
        }
    }

    private string Tail(string session, int characters)
    {
        lock (_gate)
        {
            if (!_transcripts.TryGetValue(session, out var text))
            {
                return "";
            }
            var from = Math.Max(0, text.Length - characters);
            return text.ToString(from, text.Length - from);
        }
    }

    public Task<JsonElement> ReceiveAsync(string type, TimeSpan? timeout = null) =>
        ReceiveAsync(m => m.GetProperty("type").GetString() == type, timeout, type);

    /// <summary>The next <c>error</c>; its code should be <paramref name="code"/>.</summary>
    public async Task<JsonElement> ErrorAsync(string code)
    {
        var error = await ReceiveAsync("error");
        error.GetProperty("code").GetString().ShouldBe(code, error.ToString());
        error.GetProperty("error").GetString().ShouldNotBeNullOrWhiteSpace();
        return error;
    }

    public Task<JsonElement> ReceiveAsync(Func<JsonElement, bool> match, TimeSpan? timeout = null, string what = "a matching message") =>
        HubClient.ReceiveAsync(_events.Reader, match, timeout ?? HubClient.DefaultTimeout, what);

    public static bool Is(JsonElement message, string type, string? action = null) =>
        message.GetProperty("type").GetString() == type
        && (action is null || (message.TryGetProperty("action", out var a) && a.GetString() == action));

    private async Task PumpAsync()
    {
        try
        {
            while (true)
            {
                var message = await _socket.ReceiveAsync(_ => true, TimeSpan.FromDays(1));
                if (Is(message, "output"))
                {
                    var session = message.GetProperty("session").GetString()!;
                    TaskCompletionSource changed;
                    lock (_gate)
                    {
                        if (!_transcripts.TryGetValue(session, out var text))
                        {
                            _transcripts[session] = text = new StringBuilder();
                        }
                        text.Append(message.GetProperty("data").GetString());
                        _ends[session] = message.GetProperty("end").GetInt64();
                        _outputs.Add(message);
                        changed = _output;
                        _output = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }
                    changed.TrySetResult();
                }
                else
                {
                    _events.Writer.TryWrite(message);
                }
            }
        }
        catch (InvalidOperationException)
        {
            // Closed.
        }
        finally
        {
            _events.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _socket.DisposeAsync();
        await _pump;
    }
}
