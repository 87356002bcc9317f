using System.CommandLine;
using System.Net.WebSockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe terminal</c>: a terminal on the server's machine, in this shell, in raw mode. The
/// session lives on the server: detach with Ctrl-] and attach again later with <c>--attach</c>.
/// </summary>
internal static class TerminalCommand
{
    private const byte DetachKey = 0x1d; // Ctrl-]

    public static Command Create(CredentialStore store)
    {
        var attach = new Option<string?>("--attach", "-a") { Description = "Attach to this session (see `covibe terminal ls`) instead of starting one" };
        var cwd = new Option<string?>("--cwd") { Description = "Working directory, inside the server's terminal root (the agents' workspace directory)" };
        var shell = new Option<string?>("--shell") { Description = "Shell to run, one of the server's /etc/shells (default: bash, else sh)" };
        var vm = new Option<string?>("--vm") { Description = "Open it on one of your VMs (name or id; see `covibe vm ls`), starting in ~/project, instead of the server" };
        var box = new Option<string?>("--box") { Description = "Open it in one of your boxes (see `covibe box ls`), starting in its repository" };
        var command = new Command("terminal", "Open a terminal on the server's machine, one of your VMs or one of your boxes (Ctrl-] detaches; the session keeps running)") { attach, cwd, shell, vm, box };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = parse.GetValue(vm) is { } given ? await VmCommands.ResolveAsync(client, given, ct) : null;
            Environment.ExitCode = await RunAsync(client, parse.GetValue(attach), new TerminalConfig(parse.GetValue(shell), parse.GetValue(cwd), Vm: vmId, BoxId: parse.GetValue(box)), ct);
        });
        command.Subcommands.Add(List(store));
        return command;
    }

    private static Command List(CredentialStore store)
    {
        var command = new Command("ls", "List your terminal sessions and those teammates share");
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            using var socket = await client.ConnectHubAsync(TimeProvider.System, ct, "/terminal");
            await SendAsync(socket, new TerminalRequest(TerminalMessageTypes.Session, TerminalActions.List), ct);
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var message = await ReceiveAsync(socket, buffer, ct) ?? throw new CliException("The server closed the connection.");
                var type = message.GetProperty("type").GetString();
                if (type == TerminalMessageTypes.Sessions)
                {
                    var sessions = message.Deserialize(TerminalJsonContext.Default.TerminalSessionsMessage)!.Sessions;
                    if (sessions.Length == 0)
                    {
                        Console.WriteLine("No terminal sessions. Start one with: covibe terminal");
                    }
                    foreach (var s in sessions)
                    {
                        var who = s.Owner == client.Credentials!.UserId ? "mine" : $"{s.OwnerName} (shared)";
                        Console.WriteLine($"{s.Id}  {who}  on {s.Host ?? "the server"}  {s.Cols}x{s.Rows}  {s.Viewers} watching  since {s.CreatedAt.ToLocalTime():g}");
                    }
                    return;
                }
                if (type == TerminalMessageTypes.Error)
                {
                    throw new CliException(message.GetProperty("error").GetString()!);
                }
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(CovibeClient client, string? attachTo, TerminalConfig config, CancellationToken cancellationToken)
    {
        var interactive = !Console.IsInputRedirected;
        var sessionId = attachTo ?? Guid.NewGuid().ToString();
        var link = new Link();
        using var raw = interactive ? Covibe.Execution.RawTerminalMode.Enter() : null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var windowChanged = new SemaphoreSlim(0);
        using var resize = interactive ? PosixSignalRegistration.Create(PosixSignal.SIGWINCH, _ => windowChanged.Release()) : null;
        var input = PumpInputAsync(link, sessionId, interactive, stop.Token);
        var resizes = interactive ? ResizeLoopAsync(link, sessionId, windowChanged, stop.Token) : Task.CompletedTask;
        var view = new View(sessionId);
        try
        {
            // The session lives on the server: when the connection drops, connect again and carry on
            // from the last byte shown. Keys typed while disconnected are not sent.
            var failures = 0;
            while (true)
            {
                ClientWebSocket socket;
                try
                {
                    socket = await client.ConnectHubAsync(TimeProvider.System, cancellationToken, "/terminal");
                }
                catch (Exception e) when (view.Attached && e is WebSocketException or HttpRequestException && ++failures < 30)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 250 * (1 << Math.Min(failures, 5)))), cancellationToken);
                    continue;
                }
                using (socket)
                {
                    var (cols, rows) = WindowSize(interactive);
                    await SendAsync(socket, view.Attached || attachTo is not null
                        ? new TerminalRequest(TerminalMessageTypes.Session, TerminalActions.Attach, sessionId, Since: view.Attached ? view.End : null)
                        : new TerminalRequest(TerminalMessageTypes.Session, TerminalActions.Create, sessionId, Config: config with { Cols = cols, Rows = rows }), cancellationToken);
                    view.Reattaching = view.Attached;
                    // Only now may keys go out: after the create or attach, on the same connection.
                    link.Socket = socket;
                    var ended = await ShowAsync(socket, view, cancellationToken);
                    link.Socket = null;
                    if (ended is { } code)
                    {
                        return code;
                    }
                }
                if (!view.Attached)
                {
                    await Console.Error.WriteLineAsync("\r\n[covibe: the server closed the connection]");
                    return 1;
                }
                failures = 0;
                await Console.Error.WriteLineAsync("\r\n[covibe: connection lost; reconnecting...]\r");
            }
        }
        finally
        {
            await stop.CancelAsync();
            // A read of the local terminal cannot be cancelled; the process ends without waiting for a keystroke.
            var pumps = Task.WhenAll(input, resizes);
            await Task.WhenAny(pumps, Task.Delay(TimeSpan.FromMilliseconds(200), CancellationToken.None));
            if (pumps.IsFaulted)
            {
                _ = pumps.Exception; // the connection went away under them
            }
        }
    }

    /// <summary>Where this client is in the session's output.</summary>
    private sealed class View(string sessionId)
    {
        public string SessionId { get; } = sessionId;

        public bool Attached { get; set; }

        /// <summary>An attach after a reconnect is on its way: a refusal now means the session is gone.</summary>
        public bool Reattaching { get; set; }

        public long End { get; set; }
    }

    /// <summary>The connection of the moment; input and resizes go through it, and are dropped while there is none.</summary>
    private sealed class Link
    {
        private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile ClientWebSocket? _socket;

        public ClientWebSocket? Socket
        {
            get => _socket;
            set
            {
                _socket = value;
                if (value is not null)
                {
                    _first.TrySetResult();
                }
            }
        }

        /// <summary>Completes once the first connection is ready for input.</summary>
        public Task FirstConnection => _first.Task;

        public async Task SendAsync(TerminalRequest request, CancellationToken cancellationToken)
        {
            if (_socket is { State: WebSocketState.Open } socket)
            {
                try
                {
                    await TerminalCommand.SendAsync(socket, request, cancellationToken);
                }
                catch (WebSocketException)
                {
                    // Dropped with the connection; the reader reconnects.
                }
            }
        }
    }

    /// <summary>Shows the session's output until it ends (its exit code) or the connection is lost (null).</summary>
    private static async Task<int?> ShowAsync(ClientWebSocket socket, View view, CancellationToken cancellationToken)
    {
        var stdout = Console.OpenStandardOutput();
        var buffer = new byte[256 * 1024];
        while (true)
        {
            JsonElement? message;
            try
            {
                message = await ReceiveAsync(socket, buffer, cancellationToken);
            }
            catch (WebSocketException)
            {
                return null;
            }
            if (message is not { } m)
            {
                return null;
            }
            switch (m.GetProperty("type").GetString())
            {
                case TerminalMessageTypes.Session when m.GetProperty("action").GetString() == TerminalActions.Attached:
                    if (view.Reattaching)
                    {
                        await Console.Error.WriteLineAsync("\r\n[covibe: reconnected]\r");
                    }
                    view.Attached = true;
                    view.Reattaching = false;
                    break;
                case TerminalMessageTypes.Output:
                    var data = Encoding.UTF8.GetBytes(m.GetProperty("data").GetString()!);
                    await stdout.WriteAsync(data, cancellationToken);
                    await stdout.FlushAsync(cancellationToken);
                    view.End = m.GetProperty("end").GetInt64();
                    break;
                case TerminalMessageTypes.Session when m.GetProperty("action").GetString() is TerminalActions.Exited or TerminalActions.Closed:
                    var code = m.TryGetProperty("exit_code", out var c) ? c.GetInt32() : 0;
                    await Console.Error.WriteLineAsync($"\r\n[covibe: terminal ended, exit code {code}]\r");
                    return code;
                case TerminalMessageTypes.Session when m.GetProperty("action").GetString() == TerminalActions.Detached:
                    await Console.Error.WriteLineAsync($"\r\n[covibe: detached; the session keeps running. Attach again: covibe terminal --attach {view.SessionId}]\r");
                    return 0;
                case TerminalMessageTypes.Error:
                    var text = m.GetProperty("error").GetString();
                    var errorCode = m.GetProperty("code").GetString();
                    // Refused before we are attached (bad cwd or shell, limit, no such session), signed
                    // out, or the session ended while we were away: nothing more to show.
                    if (!view.Attached || view.Reattaching || errorCode == TerminalErrorCodes.Unauthorized)
                    {
                        throw new CliException(text!);
                    }
                    // Keys that raced the shell's exit: the end of the session follows.
                    if (errorCode != TerminalErrorCodes.SessionNotFound)
                    {
                        await Console.Error.WriteLineAsync($"\r\n[covibe: {text}]\r");
                    }
                    break;
            }
        }
    }

    /// <summary>The local window's size; 80x24 when it has none (a pipe, or a terminal that reports 0x0).</summary>
    private static (int Cols, int Rows) WindowSize(bool interactive)
    {
        var (cols, rows) = interactive ? (Console.WindowWidth, Console.WindowHeight) : (0, 0);
        return cols >= 2 && rows >= 2 ? (Math.Min(cols, 1000), Math.Min(rows, 1000)) : (80, 24);
    }

    /// <summary>The window was resized (SIGWINCH): tell the session, so full-screen programs redraw.</summary>
    private static async Task ResizeLoopAsync(Link link, string sessionId, SemaphoreSlim windowChanged, CancellationToken cancellationToken)
    {
        while (true)
        {
            await windowChanged.WaitAsync(cancellationToken);
            var (cols, rows) = WindowSize(interactive: true);
            await link.SendAsync(new TerminalRequest(TerminalMessageTypes.Session, TerminalActions.Resize, sessionId, Cols: cols, Rows: rows), cancellationToken);
        }
    }

    /// <summary>
    /// Keystrokes to the session. Ctrl-] detaches. When stdin is not a terminal (a pipe), its
    /// end is sent as Ctrl-D, as if typed at the prompt.
    /// </summary>
    private static async Task PumpInputAsync(Link link, string sessionId, bool interactive, CancellationToken cancellationToken)
    {
        // Straight from fd 0: on a terminal, Console's stdin stream edits lines and only hands them over on Enter.
        using var stdin = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, bufferSize: 0);
        await link.FirstConnection.WaitAsync(cancellationToken);
        var decoder = Encoding.UTF8.GetDecoder();
        var bytes = new byte[4096];
        var chars = new char[4096];
        while (true)
        {
            var n = await stdin.ReadAsync(bytes, cancellationToken);
            if (n == 0)
            {
                if (!interactive)
                {
                    await link.SendAsync(new TerminalRequest(TerminalMessageTypes.Input, Session: sessionId, Data: "\u0004"), cancellationToken);
                }
                return;
            }
            var detach = interactive ? Array.IndexOf(bytes, DetachKey, 0, n) : -1;
            var count = decoder.GetChars(bytes, 0, detach >= 0 ? detach : n, chars, 0);
            if (count > 0)
            {
                await link.SendAsync(new TerminalRequest(TerminalMessageTypes.Input, Session: sessionId, Data: new string(chars, 0, count)), cancellationToken);
            }
            if (detach >= 0)
            {
                await link.SendAsync(new TerminalRequest(TerminalMessageTypes.Session, TerminalActions.Detach, sessionId), cancellationToken);
                return;
            }
        }
    }

    private static readonly SemaphoreSlim SendLock = new(1, 1);

    private static async Task SendAsync(ClientWebSocket socket, TerminalRequest request, CancellationToken cancellationToken) =>
        await SendAsync(socket, request, TerminalJsonContext.Wire.TerminalRequest, cancellationToken);

    private static async Task SendAsync<T>(ClientWebSocket socket, T message, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        var frame = JsonSerializer.SerializeToUtf8Bytes(message, type);
        await SendLock.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(frame, WebSocketMessageType.Text, true, cancellationToken);
        }
        finally
        {
            SendLock.Release();
        }
    }

    private static async Task<JsonElement?> ReceiveAsync(ClientWebSocket socket, byte[] buffer, CancellationToken cancellationToken)
    {
        var (text, closed) = await CovibeClient.ReceiveHubMessageAsync(socket, buffer, cancellationToken);
        if (closed)
        {
            return null;
        }
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }
}
