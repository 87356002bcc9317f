using System.Diagnostics;
using System.Text.Json;
using Microsoft.Playwright;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// Seed 001's Socket.IO clients, unmodified, as a test drives them (tests/assets/seed-001/client.js and client.py): npm's
/// socket.io-client 4.8.4 in Node or in a Chromium page (loaded from the server's /socket.io/socket.io.js), or Debian's
/// python-socketio. Each says what it hears as lines: <c>{kind: connect|upgrade|event|ack|connect_error|disconnect}</c>.
/// </summary>
public sealed class SocketIoClient : IAsyncDisposable
{
    private static readonly string Assets = Path.Combine(AppContext.BaseDirectory, "seed-001");
    private static readonly string NodeModules = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "assets", "seed-001", "node_modules"));

    // Everything heard and not yet taken: a wait takes the first line it matches and leaves the others for later waits.
    private readonly List<JsonElement> _heard = [];
    private TaskCompletionSource _more = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Func<string, Task> _tell;
    private readonly Func<ValueTask> _dispose;
    private int _nextId;

    private SocketIoClient(Func<string, Task> tell, Func<ValueTask> dispose)
    {
        _tell = tell;
        _dispose = dispose;
    }

    /// <summary>socket.io-client in Node, connecting to <paramref name="server"/> with <paramref name="options"/> (socket.io-client's).</summary>
    public static Task<SocketIoClient> NodeAsync(Uri server, object? options = null) =>
        ProcessAsync(new ProcessStartInfo("node", [Path.Combine(Assets, "client.js")]) { Environment = { ["NODE_PATH"] = NodeModules } }, server, options);

    /// <summary>python-socketio's client (options: <c>transports</c>, <c>auth</c>, <c>reconnection</c>).</summary>
    public static Task<SocketIoClient> PythonAsync(Uri server, object? options = null) =>
        ProcessAsync(new ProcessStartInfo("/usr/bin/python3", ["-u", Path.Combine(Assets, "client.py")]), server, options);

    /// <summary>socket.io-client in <paramref name="page"/> (a page of the server), loaded as apps load it: /socket.io/socket.io.js.</summary>
    public static async Task<SocketIoClient> BrowserAsync(IPage page, Uri server, object? options = null)
    {
        SocketIoClient? client = null;
        await page.ExposeFunctionAsync("say", (string line) => client!.Heard(line));
        await page.AddScriptTagAsync(new PageAddScriptTagOptions { Url = "/socket.io/socket.io.js" });
        // The driver is the test's, not the page's: evaluated rather than added as a script, which the page's CSP forbids inline.
        await page.EvaluateAsync("() => {\n" + await File.ReadAllTextAsync(Path.Combine(Assets, "client.js")) + "\n}");
        client = new SocketIoClient(line => page.EvaluateAsync("line => window.drive(line)", line), () => ValueTask.CompletedTask);
        await client.ConnectAsync(server, options);
        return client;
    }

    private static async Task<SocketIoClient> ProcessAsync(ProcessStartInfo info, Uri server, object? options)
    {
        info.RedirectStandardInput = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        var process = Process.Start(info)!;
        var errors = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (errors)
            {
                errors.AppendLine(e.Data);
            }
        };
        process.BeginErrorReadLine();
        SocketIoClient client = null!;
        client = new SocketIoClient(
            async line =>
            {
                await process.StandardInput.WriteLineAsync(line);
                await process.StandardInput.FlushAsync();
            },
            async () =>
            {
                process.StandardInput.Close();
                if (!process.WaitForExit(2000))
                {
                    process.Kill(entireProcessTree: true);
                }
                await process.WaitForExitAsync();
                process.Dispose();
            });
        _ = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                client.Heard(line);
            }
            string said;
            lock (errors)
            {
                said = errors.ToString().Trim();
            }
            client.Heard(JsonSerializer.Serialize(new { kind = "exited", stderr = said }));
        });
        await client.ConnectAsync(server, options);
        return client;
    }

    private void Heard(string line)
    {
        using var document = JsonDocument.Parse(line);
        TaskCompletionSource more;
        lock (_heard)
        {
            _heard.Add(document.RootElement.Clone());
            more = _more;
            _more = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        more.TrySetResult();
    }

    private Task ConnectAsync(Uri server, object? options) =>
        _tell(JsonSerializer.Serialize(new { op = "connect", url = server.ToString().TrimEnd('/'), options = options ?? new { } }));

    /// <summary>The first line heard that matches and no earlier wait took (waiting for it if none has come yet).</summary>
    public async Task<JsonElement> NextAsync(Func<JsonElement, bool> match, string what, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? HubClient.DefaultTimeout);
        while (true)
        {
            Task more;
            lock (_heard)
            {
                var at = _heard.FindIndex(l => match(l));
                if (at >= 0)
                {
                    var line = _heard[at];
                    _heard.RemoveAt(at);
                    return line;
                }
                if (_heard.FirstOrDefault(l => l.GetProperty("kind").GetString() == "exited") is { ValueKind: JsonValueKind.Object } exited)
                {
                    throw new InvalidOperationException($"The client exited while waiting for {what}: {exited.GetProperty("stderr")}");
                }
                more = _more.Task;
            }
            try
            {
                await more.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                string[] heard;
                lock (_heard)
                {
                    heard = [.. _heard.TakeLast(10).Select(l => l.GetRawText()[..Math.Min(200, l.GetRawText().Length)])];
                }
                throw new TimeoutException($"No {what} within {timeout ?? HubClient.DefaultTimeout}. Last heard and not taken:\n{string.Join('\n', heard)}");
            }
        }
    }

    /// <summary>The next line of <paramref name="kind"/> (<c>connect</c>, <c>upgrade</c>, <c>disconnect</c>, <c>connect_error</c>).</summary>
    public Task<JsonElement> NextAsync(string kind, TimeSpan? timeout = null) => NextAsync(l => l.GetProperty("kind").GetString() == kind, kind, timeout);

    /// <summary>The data of the next <paramref name="name"/> event that matches.</summary>
    public async Task<JsonElement> EventAsync(string name, Func<JsonElement, bool>? match = null, TimeSpan? timeout = null) =>
        (await NextAsync(l => l.GetProperty("kind").GetString() == "event" && l.GetProperty("event").GetString() == name
            && (match is null || match(l.GetProperty("data"))), $"a {name} event", timeout)).GetProperty("data");

    /// <summary>Emits with an acknowledgement callback and returns what the server acknowledged with.</summary>
    public async Task<JsonElement> EmitAsync(string name, object data, TimeSpan? timeout = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        await _tell(JsonSerializer.Serialize(new { op = "emit", id, @event = name, data, ack = true }, JsonSerializerOptions.Web));
        var answer = await NextAsync(l => l.GetProperty("kind").GetString() is "ack" or "ack_timeout" && l.GetProperty("id").GetInt32() == id, $"the acknowledgement of {name}",
            timeout ?? TimeSpan.FromSeconds(20));
        return answer.GetProperty("kind").GetString() == "ack" ? answer.GetProperty("data") : throw new TimeoutException($"{name} was never acknowledged.");
    }

    /// <summary>Emits without asking for an acknowledgement, as seed 001's client does.</summary>
    public Task SendAsync(string name, object data) =>
        _tell(JsonSerializer.Serialize(new { op = "emit", id = 0, @event = name, data, ack = false }, JsonSerializerOptions.Web));

    /// <summary>Writes an Engine.IO message packet as it is (<c>4</c> and what follows), through the client's own transport.</summary>
    public Task RawAsync(string packet) => _tell(JsonSerializer.Serialize(new { op = "raw", packet }));

    public Task DisconnectAsync() => _tell("{\"op\":\"disconnect\"}");

    public ValueTask DisposeAsync() => _dispose();
}
