using System.Collections.Concurrent;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Runners;

/// <summary>
/// Terminals on runner VMs: the runner owns the PTY (a login shell there, as the runner's user); the server's terminal
/// session reads and types through a <see cref="RunnerPty"/>. A terminal ends with its runner's connection, as an SSH
/// terminal ends with its connection.
/// </summary>
public sealed class RunnerTerminals
{
    private readonly ConcurrentDictionary<(string VmId, string TerminalId), RunnerPty> _open = new();

    /// <summary>Opens a shell on the runner's machine, starting in <paramref name="cwd"/> (relative to its user's home).</summary>
    public async Task<IPty> OpenAsync(RunnerSession session, string cwd, int columns, int rows, CancellationToken cancellationToken)
    {
        var id = Hosting.Tokens.NewId();
        var pty = new RunnerPty(session, id, () => _open.TryRemove((session.VmId, id), out _));
        _open[(session.VmId, id)] = pty;
        var reply = await session.RequestAsync(new RunnerMessage(RunnerProtocol.TerminalOpen, TerminalId: id, Cwd: cwd, Cols: columns, Rows: rows), cancellationToken);
        if (reply.Error is { } error)
        {
            pty.Dispose();
            throw new IOException($"The runner could not open a terminal: {error}");
        }
        return pty;
    }

    /// <summary>Output or the exit of one of this runner's terminals.</summary>
    public void Deliver(RunnerSession session, RunnerMessage message)
    {
        if (message.TerminalId is not { } id || !_open.TryGetValue((session.VmId, id), out var pty))
        {
            return; // closed already, or not this runner's
        }
        if (message.Type == RunnerProtocol.TerminalExit)
        {
            pty.Exited(message.ExitCode ?? 0);
        }
        else if (message.Data is { } data)
        {
            try
            {
                pty.Received(Convert.FromBase64String(data));
            }
            catch (FormatException)
            {
                session.Send(new RunnerMessage(RunnerProtocol.Error, TerminalId: id, Error: "'data' is not base64."));
            }
        }
    }
}

/// <summary>A PTY on a runner's machine, read and written through the runner's connection.</summary>
public sealed class RunnerPty : IPty
{
    private readonly RunnerSession _session;
    private readonly string _id;
    private readonly Action _forget;
    private readonly System.Collections.Concurrent.BlockingCollection<byte[]> _chunks = new(boundedCapacity: 4096);
    private readonly CancellationTokenRegistration _onClose;
    private byte[] _pending = [];
    private int _pendingOffset;
    private int? _exitCode;
    private int _disposed;

    internal RunnerPty(RunnerSession session, string id, Action forget)
    {
        _session = session;
        _id = id;
        _forget = forget;
        // The runner went away: its terminal has hung up (an SSH terminal ends with its connection too).
        _onClose = session.Closed.Register(() => Exited(129));
    }

    public int ProcessId => 0;

    internal void Received(byte[] data)
    {
        if (!_chunks.IsAddingCompleted)
        {
            _chunks.TryAdd(data, TimeSpan.FromSeconds(5));
        }
    }

    internal void Exited(int code)
    {
        _exitCode ??= code;
        _chunks.CompleteAdding();
    }

    public int Read(Span<byte> buffer, CancellationToken cancellationToken)
    {
        if (_pendingOffset >= _pending.Length)
        {
            try
            {
                if (!_chunks.TryTake(out var next, Timeout.Infinite, cancellationToken))
                {
                    return 0;
                }
                (_pending, _pendingOffset) = (next, 0);
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
            {
                return 0; // completed: hung up
            }
        }
        var n = Math.Min(buffer.Length, _pending.Length - _pendingOffset);
        _pending.AsSpan(_pendingOffset, n).CopyTo(buffer);
        _pendingOffset += n;
        return n;
    }

    public void Write(ReadOnlySpan<byte> data) =>
        _session.Send(new RunnerMessage(RunnerProtocol.TerminalInput, TerminalId: _id, Data: Convert.ToBase64String(data)));

    public void Resize(int columns, int rows) =>
        _session.Send(new RunnerMessage(RunnerProtocol.TerminalResize, TerminalId: _id, Cols: columns, Rows: rows));

    public int? TryGetExitCode() => _chunks.IsCompleted ? _exitCode : null;

    public async Task HangUpAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        _session.Send(new RunnerMessage(RunnerProtocol.TerminalClose, TerminalId: _id));
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!_chunks.IsAddingCompleted && waited.Elapsed < grace)
        {
            await Task.Delay(20, cancellationToken);
        }
        Exited(129);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        _onClose.Dispose();
        _forget();
        // Not disposed: the session's reader thread may still be taking from it; completing it ends that read.
        Exited(_exitCode ?? 129);
    }
}
