using System.Collections.Concurrent;
using System.Threading.Channels;
using Covibe.Execution;
using Covibe.Protocol;

namespace Covibe.Runner;

/// <summary>
/// Terminals the server opens on the runner's machine: a login shell on a local PTY, as the runner's user, starting in
/// a directory of its home. They end with the connection that opened them (as an SSH terminal ends with its connection).
/// </summary>
internal sealed class RunnerShells(string home) : IDisposable
{
    private readonly ConcurrentDictionary<string, LocalPty> _open = new();

    public RunnerMessage Open(RunnerMessage request, ChannelWriter<RunnerMessage> outbound)
    {
        if (request.TerminalId is not { Length: > 0 and <= 64 } id || _open.ContainsKey(id))
        {
            return new RunnerMessage(RunnerProtocol.Result, Id: request.Id, Error: "The terminal request has no usable terminal id.");
        }
        var cwd = Path.GetFullPath(Path.Combine(home, request.Cwd ?? "project"));
        if (!cwd.StartsWith(home, StringComparison.Ordinal) || !Directory.Exists(cwd))
        {
            cwd = home;
        }
        var shell = Environment.GetEnvironmentVariable("SHELL") is { Length: > 0 } s && File.Exists(s) ? s : "/bin/sh";
        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Where(e => (string)e.Key != RunnerRegistration.TokenVariable)
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        environment["TERM"] = "xterm-256color";
        var pty = LocalPty.Start(new PtyStartInfo(shell, ["-l"], cwd, environment, Math.Clamp(request.Cols ?? 80, 2, 1000), Math.Clamp(request.Rows ?? 24, 2, 1000)));
        _open[id] = pty;
        var reader = new Thread(() => Pump(id, pty, outbound)) { IsBackground = true, Name = "runner-terminal" };
        reader.Start();
        return new RunnerMessage(RunnerProtocol.Result, Id: request.Id, TerminalId: id);
    }

    public void Input(RunnerMessage message)
    {
        if (message.TerminalId is { } id && _open.TryGetValue(id, out var pty) && message.Data is { } data)
        {
            try
            {
                pty.Write(Convert.FromBase64String(data));
            }
            catch (Exception e) when (e is TimeoutException or IOException or FormatException)
            {
                // Not taken: as a local terminal drops what a stuck program does not read.
            }
        }
    }

    public void Resize(RunnerMessage message)
    {
        if (message.TerminalId is { } id && _open.TryGetValue(id, out var pty))
        {
            pty.Resize(Math.Clamp(message.Cols ?? 80, 2, 1000), Math.Clamp(message.Rows ?? 24, 2, 1000));
        }
    }

    public void Close(string? id)
    {
        if (id is not null && _open.TryRemove(id, out var pty))
        {
            _ = HangUpAsync(pty);
        }
    }

    /// <summary>Hangs up every terminal (the connection that opened them is gone).</summary>
    public void CloseAll()
    {
        foreach (var id in _open.Keys)
        {
            Close(id);
        }
    }

    private void Pump(string id, LocalPty pty, ChannelWriter<RunnerMessage> outbound)
    {
        var buffer = new byte[32 * 1024];
        try
        {
            int n;
            while ((n = pty.Read(buffer, CancellationToken.None)) > 0)
            {
                // A dedicated thread: waiting here is how a fast shell is held back by a slow connection.
                outbound.WriteAsync(new RunnerMessage(RunnerProtocol.TerminalOutput, TerminalId: id, Data: Convert.ToBase64String(buffer, 0, n))).AsTask().GetAwaiter().GetResult();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or ChannelClosedException)
        {
        }
        for (var i = 0; i < 50 && pty.TryGetExitCode() is null; i++)
        {
            Thread.Sleep(20);
        }
        var code = pty.TryGetExitCode() ?? 129;
        outbound.TryWrite(new RunnerMessage(RunnerProtocol.TerminalExit, TerminalId: id, ExitCode: code));
        if (_open.TryRemove(id, out _))
        {
            pty.Dispose();
        }
    }

    private static async Task HangUpAsync(LocalPty pty)
    {
        try
        {
            await pty.HangUpAsync(TimeSpan.FromSeconds(2), CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
        }
    }

    public void Dispose() => CloseAll();
}
