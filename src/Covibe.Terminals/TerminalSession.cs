using Covibe.Execution;
using Covibe.Protocol;

namespace Covibe.Terminals;

/// <summary>
/// Who is using a terminal: the token's subject, display name and team (teammates may watch
/// shared sessions), and the login the token belongs to, if the issuer can revoke logins.
/// </summary>
public sealed record TerminalUser(string Id, string Name, string? TeamId, string? Login = null);

/// <summary>
/// One shell on a PTY, independent of any connection: viewers attach and detach; the shell runs
/// on until it exits, its owner closes it, or nobody has watched it for SESSION_TIMEOUT.
/// One dedicated thread reads the PTY into the session's <see cref="TerminalOutput"/>.
/// </summary>
public sealed class TerminalSession : IDisposable
{
    private const int ReadChunk = 64 * 1024;
    private readonly IPty _pty;
    private readonly TimeProvider _time;
    private readonly TimeSpan _slowViewer;
    private readonly Lock _ptyLock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastActivityTicks;
    private long _unwatchedSinceTicks;
    private int _viewers;
    private int _sizeVersion;
    private bool _ptyClosed;
    private volatile bool _shared;
    private volatile string? _lastCommandId;

    internal TerminalSession(string id, TerminalUser owner, TerminalStart start, IPty pty, TerminalOptions options, TimeProvider time)
    {
        Id = id;
        Owner = owner;
        Host = start.Host;
        CommandDirectory = start.CommandDirectory;
        var (cols, rows) = (start.Info.Columns, start.Info.Rows);
        _pty = pty;
        _time = time;
        _slowViewer = TimeSpan.FromSeconds(options.SlowViewerSeconds);
        Cols = cols;
        Rows = rows;
        Output = new TerminalOutput(options.ScrollbackBytes, options.MaxViewerLagBytes);
        CreatedAt = time.GetUtcNow().UtcDateTime;
        _lastActivityTicks = CreatedAt.Ticks;
        _unwatchedSinceTicks = CreatedAt.Ticks;
    }

    public string Id { get; }

    public TerminalUser Owner { get; }

    /// <summary>The VM the shell runs on (its name), or null for this machine.</summary>
    public string? Host { get; }

    /// <summary>Turns a <c>command</c>'s cwd into the path the shell sees.</summary>
    public Func<string, string> CommandDirectory { get; }

    public DateTime CreatedAt { get; }

    public DateTime LastActivity => new(Interlocked.Read(ref _lastActivityTicks), DateTimeKind.Utc);

    public int Cols { get; private set; }

    public int Rows { get; private set; }

    public bool Shared => _shared;

    public int Viewers => Volatile.Read(ref _viewers);

    public int ProcessId => _pty.ProcessId;

    /// <summary>The id of the last <c>command</c> typed, which output messages carry (seed 004).</summary>
    public string? LastCommandId => _lastCommandId;

    /// <summary>The shell's exit code once it has exited and its output is complete.</summary>
    public Task<int> Exited => _exit.Task;

    public int? ExitCode { get; private set; }

    internal TerminalOutput Output { get; }

    /// <summary>Completes when the session has ended (its exit recorded, viewers told).</summary>
    internal Task Finished { get; private set; } = Task.CompletedTask;

    public TerminalSessionInfo Info(bool withOwner = true) => new(
        Id, CreatedAt, LastActivity, ExitCode is null ? "active" : "exited",
        withOwner ? Owner.Id : null, withOwner ? Owner.Name : null,
        withOwner ? Shared : null, withOwner ? Cols : null, withOwner ? Rows : null, withOwner ? Viewers : null, withOwner ? Host : null);

    internal void Start(Action<TerminalSession> onExit)
    {
        var reader = Task.Factory.StartNew(ReadLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Finished = FinishAsync(reader, onExit);
    }

    public bool IsOwner(TerminalUser user) => user.Id == Owner.Id;

    /// <summary>Owners always; teammates while the owner shares the session (read-only).</summary>
    public bool IsVisibleTo(TerminalUser user) =>
        IsOwner(user) || (_shared && Owner.TeamId is not null && Owner.TeamId == user.TeamId);

    /// <summary>Shares the session with the owner's team, read-only, or stops: teammates watching then are detached.</summary>
    public void SetShared(bool shared)
    {
        _shared = shared;
        if (!shared)
        {
            Output.Wake();
        }
    }

    /// <summary>
    /// Types into the terminal. False once the shell has gone. Throws <see cref="TerminalException"/>
    /// (COMMAND_FAILED) when the program has stopped reading its input.
    /// </summary>
    public bool Write(ReadOnlySpan<byte> data, string? commandId)
    {
        lock (_ptyLock)
        {
            if (_ptyClosed)
            {
                return false;
            }
            if (commandId is not null)
            {
                _lastCommandId = commandId;
            }
            Touch();
            try
            {
                _pty.Write(data);
            }
            catch (IOException)
            {
                return false; // the shell is going away
            }
            catch (TimeoutException e)
            {
                throw new TerminalException(TerminalErrorCodes.CommandFailed, e.Message + " Wait for it to read, or close the session.");
            }
            return true;
        }
    }

    public bool Resize(int cols, int rows)
    {
        lock (_ptyLock)
        {
            if (_ptyClosed)
            {
                return false;
            }
            _pty.Resize(cols, rows);
            Cols = cols;
            Rows = rows;
            Interlocked.Increment(ref _sizeVersion);
            Touch();
        }
        // Viewers are told, so those who only watch can draw at the same size.
        Output.Wake();
        return true;
    }

    /// <summary>Changes with every resize.</summary>
    public int SizeVersion => Volatile.Read(ref _sizeVersion);



    internal OutputCursor Attach(long? since)
    {
        Interlocked.Increment(ref _viewers);
        return Output.Attach(since);
    }

    internal void Detach(OutputCursor cursor)
    {
        cursor.Dispose();
        if (Interlocked.Decrement(ref _viewers) == 0)
        {
            Interlocked.Exchange(ref _unwatchedSinceTicks, _time.GetUtcNow().UtcTicks);
        }
    }

    /// <summary>True when nobody has been attached for <paramref name="timeout"/>.</summary>
    internal bool IsIdle(TimeSpan timeout) =>
        Viewers == 0 && _time.GetUtcNow().UtcTicks - Interlocked.Read(ref _unwatchedSinceTicks) > timeout.Ticks;

    /// <summary>The shell has exited though its terminal is still held open (a background job kept it): end the rest.</summary>
    internal bool ShellGoneButTerminalHeld() => !_exit.Task.IsCompleted && _pty.TryGetExitCode() is not null;

    /// <summary>Hangs the shell up (SIGHUP, then SIGKILL to the whole session) and waits for the session to end.</summary>
    public async Task<int> CloseAsync(CancellationToken cancellationToken)
    {
        await _pty.HangUpAsync(TimeSpan.FromSeconds(1), cancellationToken);
        try
        {
            return await _exit.Task.WaitAsync(TimeSpan.FromSeconds(3), cancellationToken);
        }
        catch (TimeoutException)
        {
            // Something outside the shell's session still holds the terminal open: stop reading it.
            try
            {
                await _stop.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // Finished meanwhile.
            }
            return await _exit.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Called by the session itself once it has ended.</summary>
    public void Dispose() => _stop.Dispose();

    private void Touch() => Interlocked.Exchange(ref _lastActivityTicks, _time.GetUtcNow().UtcTicks);

    private void ReadLoop()
    {
        var buffer = new byte[ReadChunk];
        try
        {
            while (true)
            {
                var space = Output.WaitForSpace(buffer.Length, _slowViewer, _stop.Token);
                var n = _pty.Read(buffer.AsSpan(0, space), _stop.Token);
                if (n == 0)
                {
                    return;
                }
                Output.Append(buffer.AsSpan(0, n));
                Touch();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: the caller hangs the shell up.
        }
    }

    private async Task FinishAsync(Task reader, Action<TerminalSession> onExit)
    {
        int? exitCode = null;
        try
        {
            await reader;
            // The terminal hung up, so the shell has exited or is about to; reap it (and anything left).
            exitCode = _pty.TryGetExitCode();
            for (var i = 0; i < 100 && exitCode is null; i++)
            {
                await Task.Delay(20, CancellationToken.None);
                exitCode = _pty.TryGetExitCode();
            }
            if (exitCode is null)
            {
                await _pty.HangUpAsync(TimeSpan.FromMilliseconds(500), CancellationToken.None);
                exitCode = _pty.TryGetExitCode();
            }
        }
        finally
        {
            // Whatever happened above, the session ends for everyone: nobody waits on it forever.
            lock (_ptyLock)
            {
                _ptyClosed = true;
                _pty.Dispose();
            }
            Dispose();
            ExitCode = exitCode ?? -1;
            onExit(this);
            _exit.TrySetResult(ExitCode.Value);
            Output.Complete();
        }
    }
}
