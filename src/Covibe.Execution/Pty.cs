using System.Runtime.InteropServices;

namespace Covibe.Execution;

/// <summary>What to run on a new pseudo-terminal. <see cref="Environment"/> is the whole environment: nothing is inherited.</summary>
/// <remarks>
/// <see cref="ControllingTerminalInside"/>: the program does not take the terminal as its controlling
/// terminal; a process it starts does (<c>setsid --ctty</c> inside a sandbox, whose shell then leads
/// its own session in its own PID namespace, so job control works there).
/// </remarks>
public sealed record PtyStartInfo(
    string Program,
    IReadOnlyList<string> Arguments,
    string WorkingDirectory,
    IReadOnlyDictionary<string, string> Environment,
    int Columns,
    int Rows,
    bool ControllingTerminalInside = false);

/// <summary>
/// A program on a pseudo-terminal: the program is a session leader whose controlling terminal
/// is the PTY, so job control, Ctrl-C, window size and <c>isatty</c> behave as in any terminal.
/// Reads block (call them from one dedicated thread); writes may come from any thread.
/// </summary>
public interface IPty : IDisposable
{
    int ProcessId { get; }

    /// <summary>Blocks until output is available, then copies it. 0 when the terminal has hung up (every process holding it has gone).</summary>
    int Read(Span<byte> buffer, CancellationToken cancellationToken);

    /// <summary>
    /// Types <paramref name="data"/> into the terminal, as keystrokes. Throws <see cref="TimeoutException"/>
    /// when the program has taken none of it for <see cref="LocalPty.WriteTimeout"/> (its input is full
    /// and it is not reading); what was not taken is dropped.
    /// </summary>
    void Write(ReadOnlySpan<byte> data);

    /// <summary>Sets the window size; the foreground program receives SIGWINCH.</summary>
    void Resize(int columns, int rows);

    /// <summary>The exit code once the program has exited (128 + signal if killed), reaping it; null while it runs.</summary>
    int? TryGetExitCode();

    /// <summary>Hangs up: SIGHUP to the program (a shell passes it on to its jobs), SIGKILL to every process of the session after <paramref name="grace"/>.</summary>
    Task HangUpAsync(TimeSpan grace, CancellationToken cancellationToken);
}

/// <summary>
/// A PTY on this machine through libc: <c>posix_openpt</c> (close-on-exec), then
/// <c>posix_spawnp</c> with POSIX_SPAWN_SETSID and the terminal opened as fds 0-2, so
/// nothing is forked from managed code and no other descriptor of ours reaches the child.
/// Signal dispositions and mask are reset (.NET ignores SIGPIPE; a shell must not inherit that).
/// </summary>
public sealed class LocalPty : IPty
{
    private readonly int _master;
    private readonly Lock _reapLock = new();
    // Set when a write gave up on a program that does not read; later writes then fail at once
    // (rather than each waiting again) until one goes through.
    private volatile bool _inputStuck;
    private int? _exitCode;
    private int _disposed;

    private LocalPty(int master, int pid)
    {
        _master = master;
        ProcessId = pid;
    }

    public int ProcessId { get; }

    public static TimeSpan WriteTimeout { get; } = TimeSpan.FromSeconds(5);

    public static unsafe LocalPty Start(PtyStartInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        var master = PtyNative.PosixOpenPt(PtyNative.O_RDWR | PtyNative.O_NOCTTY | PtyNative.O_CLOEXEC);
        if (master < 0)
        {
            throw new IOException($"Could not open a pseudo-terminal: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        try
        {
            Check(PtyNative.GrantPt(master), "grantpt");
            Check(PtyNative.UnlockPt(master), "unlockpt");
            var name = stackalloc byte[128];
            var error = PtyNative.PtsNameR(master, name, 128);
            if (error != 0)
            {
                throw new IOException($"ptsname_r failed: {Marshal.GetPInvokeErrorMessage(error)}");
            }
            SetSize(master, info.Columns, info.Rows);
            // Non-blocking: a program that stops reading its input must not hold a writer forever.
            var flags = PtyNative.Fcntl(master, PtyNative.F_GETFL, 0);
            Check(flags < 0 ? -1 : PtyNative.Fcntl(master, PtyNative.F_SETFL, flags | PtyNative.O_NONBLOCK), "fcntl");
            var pid = Spawn(info, name);
            return new LocalPty(master, pid);
        }
        catch
        {
            PtyNative.Close(master);
            throw;
        }
    }

    private static unsafe int Spawn(PtyStartInfo info, byte* terminalPath)
    {
        var strings = new List<nint>();
        var attr = NativeMemory.AllocZeroed(PtyNative.OpaqueSize);
        var actions = NativeMemory.AllocZeroed(PtyNative.OpaqueSize);
        var mask = NativeMemory.AllocZeroed(PtyNative.OpaqueSize);
        var defaults = NativeMemory.AllocZeroed(PtyNative.OpaqueSize);
        var argv = (byte**)NativeMemory.AllocZeroed((nuint)(info.Arguments.Count + 2), (nuint)sizeof(nint));
        var envp = (byte**)NativeMemory.AllocZeroed((nuint)(info.Environment.Count + 1), (nuint)sizeof(nint));
        try
        {
            byte* Utf8(string value)
            {
                var p = Marshal.StringToCoTaskMemUTF8(value);
                strings.Add(p);
                return (byte*)p;
            }

            // argv and envp end with a null element (AllocZeroed leaves it there).
            argv[0] = Utf8(info.Program);
            for (var i = 0; i < info.Arguments.Count; i++)
            {
                argv[i + 1] = Utf8(info.Arguments[i]);
            }
            var e = 0;
            foreach (var (key, value) in info.Environment)
            {
                envp[e++] = Utf8($"{key}={value}");
            }

            Check0(PtyNative.SpawnAttrInit(attr), "posix_spawnattr_init");
            _ = PtyNative.SigEmptySet(mask);
            _ = PtyNative.SigFillSet(defaults);
            Check0(PtyNative.SpawnAttrSetSigMask(attr, mask), "posix_spawnattr_setsigmask");
            Check0(PtyNative.SpawnAttrSetSigDefault(attr, defaults), "posix_spawnattr_setsigdefault");
            Check0(PtyNative.SpawnAttrSetFlags(attr, PtyNative.POSIX_SPAWN_SETSID | PtyNative.POSIX_SPAWN_SETSIGMASK | PtyNative.POSIX_SPAWN_SETSIGDEF), "posix_spawnattr_setflags");

            Check0(PtyNative.FileActionsInit(actions), "posix_spawn_file_actions_init");
            Check0(PtyNative.FileActionsAddChdir(actions, Utf8(info.WorkingDirectory)), "posix_spawn_file_actions_addchdir_np");
            // Opened after setsid and without O_NOCTTY: the terminal becomes the child's controlling terminal.
            var open = info.ControllingTerminalInside ? PtyNative.O_RDWR | PtyNative.O_NOCTTY : PtyNative.O_RDWR;
            Check0(PtyNative.FileActionsAddOpen(actions, 0, terminalPath, open, 0), "posix_spawn_file_actions_addopen");
            Check0(PtyNative.FileActionsAddDup2(actions, 0, 1), "posix_spawn_file_actions_adddup2");
            Check0(PtyNative.FileActionsAddDup2(actions, 0, 2), "posix_spawn_file_actions_adddup2");

            int pid;
            var error = PtyNative.SpawnP(&pid, argv[0], actions, attr, argv, envp);
            if (error != 0)
            {
                throw new IOException($"Could not start '{info.Program}': {Marshal.GetPInvokeErrorMessage(error)}");
            }
            return pid;
        }
        finally
        {
            _ = PtyNative.FileActionsDestroy(actions);
            _ = PtyNative.SpawnAttrDestroy(attr);
            foreach (var p in strings)
            {
                Marshal.FreeCoTaskMem(p);
            }
            NativeMemory.Free(argv);
            NativeMemory.Free(envp);
            NativeMemory.Free(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(mask);
            NativeMemory.Free(defaults);
        }
    }

    public unsafe int Read(Span<byte> buffer, CancellationToken cancellationToken)
    {
        var poll = new PtyNative.PollFd { Fd = _master, Events = PtyNative.POLLIN };
        var total = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Block (in slices, so a cancelled reader notices) until there is output; once some has
            // been read, only take what is ready now: a PTY hands out about 4 KiB per read, and
            // gathering what a fast program has already written makes fewer, larger messages.
            var ready = PtyNative.Poll(&poll, 1, total == 0 ? 200 : 0);
            if (ready == 0)
            {
                if (total > 0)
                {
                    return total;
                }
                continue;
            }
            if (ready < 0)
            {
                if (Marshal.GetLastPInvokeError() == PtyNative.EINTR)
                {
                    continue;
                }
                throw new IOException($"poll on the terminal failed: {Marshal.GetLastPInvokeErrorMessage()}");
            }
            fixed (byte* p = buffer)
            {
                var n = PtyNative.Read(_master, p + total, buffer.Length - total);
                if (n > 0)
                {
                    total += (int)n;
                    if (total == buffer.Length)
                    {
                        return total;
                    }
                    continue;
                }
                var errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (n < 0 && errno is PtyNative.EINTR or PtyNative.EAGAIN)
                {
                    continue;
                }
                // 0 or EIO: the other side is closed by every process that had it. Hand over what was read first.
                return total;
            }
        }
    }

    public unsafe void Write(ReadOnlySpan<byte> data)
    {
        var poll = new PtyNative.PollFd { Fd = _master, Events = PtyNative.POLLOUT };
        var deadline = Environment.TickCount64 + (long)WriteTimeout.TotalMilliseconds;
        fixed (byte* p = data)
        {
            var offset = 0;
            while (offset < data.Length)
            {
                var n = PtyNative.Write(_master, p + offset, data.Length - offset);
                if (n >= 0)
                {
                    offset += (int)n;
                    _inputStuck = false;
                    deadline = Environment.TickCount64 + (long)WriteTimeout.TotalMilliseconds;
                    continue;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno == PtyNative.EINTR)
                {
                    continue;
                }
                if (errno != PtyNative.EAGAIN)
                {
                    throw new IOException($"Could not write to the terminal: {Marshal.GetPInvokeErrorMessage(errno)}");
                }
                // The terminal's input is full: wait for the program to read some, but not forever.
                var left = _inputStuck ? 0 : deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    _inputStuck = true;
                    throw new TimeoutException($"The program in the terminal has not read its input for {WriteTimeout.TotalSeconds:0} s; {data.Length - offset} bytes were dropped.");
                }
                _ = PtyNative.Poll(&poll, 1, (int)Math.Min(left, 200));
            }
        }
    }

    public void Resize(int columns, int rows) => SetSize(_master, columns, rows);

    public unsafe int? TryGetExitCode()
    {
        lock (_reapLock)
        {
            if (_exitCode is null)
            {
                int status;
                var result = PtyNative.WaitPid(ProcessId, &status, PtyNative.WNOHANG);
                if (result == ProcessId)
                {
                    var signal = status & 0x7f;
                    _exitCode = signal == 0 ? (status >> 8) & 0xff : 128 + signal;
                }
                else if (result < 0 && Marshal.GetLastPInvokeError() == PtyNative.ECHILD)
                {
                    // Reaped elsewhere (a host that reaps every child): gone, status unknown.
                    _exitCode = -1;
                }
            }
            return _exitCode;
        }
    }

    public async Task HangUpAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        // The terminal's session leader: the program, or the shell it started in a session of its own (in a sandbox).
        var leader = PtyNative.TcGetSid(_master);
        if (TryGetExitCode() is null)
        {
            if (leader > 0 && leader != ProcessId)
            {
                Native.Kill(leader, Native.SIGHUP);
            }
            Native.Kill(ProcessId, Native.SIGHUP);
        }
        var deadline = Environment.TickCount64 + (long)grace.TotalMilliseconds;
        while (TryGetExitCode() is null && Environment.TickCount64 < deadline)
        {
            await Task.Delay(20, cancellationToken);
        }
        // Whatever is left of the session (jobs that ignore SIGHUP, the shell itself) goes now.
        foreach (var pid in ProcFs.SessionMembers(ProcessId).Concat(leader > 0 && leader != ProcessId ? ProcFs.SessionMembers(leader) : []))
        {
            Native.Kill(pid, Native.SIGKILL);
        }
        while (TryGetExitCode() is null)
        {
            await Task.Delay(10, cancellationToken);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            PtyNative.Close(_master);
        }
    }

    private static unsafe void SetSize(int fd, int columns, int rows)
    {
        var size = new PtyNative.WinSize { Cols = (ushort)Math.Clamp(columns, 1, ushort.MaxValue), Rows = (ushort)Math.Clamp(rows, 1, ushort.MaxValue) };
        if (PtyNative.Ioctl(fd, PtyNative.TIOCSWINSZ, &size) != 0)
        {
            throw new IOException($"Could not set the terminal size: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
        {
            throw new IOException($"{call} failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    private static void Check0(int error, string call)
    {
        if (error != 0)
        {
            throw new IOException($"{call} failed: {Marshal.GetPInvokeErrorMessage(error)}");
        }
    }
}
