using System.Runtime.InteropServices;

namespace Covibe.Execution;

/// <summary>
/// Linux inotify as <see cref="FileChanges"/> and <see cref="TreeChanges"/> use it: one descriptor, and a thread of its own
/// that hands each event (watch, mask, name) to a callback. Only that thread closes the descriptor, once asked to
/// (<see cref="Close"/>): closed from another thread, its number could be given to another file while the reader still
/// reads it.
/// </summary>
internal static partial class Inotify
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, bool> Closing = new();

    public const uint Modify = 0x2;
    public const uint CloseWrite = 0x8;
    public const uint MovedFrom = 0x40;
    public const uint MovedTo = 0x80;
    public const uint Create = 0x100;
    public const uint Delete = 0x200;
    public const uint Ignored = 0x8000;
    public const uint IsDirectory = 0x40000000;
    public const uint OnlyDirectory = 0x01000000;
    public const uint DontFollow = 0x02000000;
    private const int Cloexec = 0x80000;

    /// <summary>A new descriptor whose events go to <paramref name="onEvent"/>; -1 where inotify is unavailable.</summary>
    public static int Start(string threadName, Action<int, uint, string> onEvent)
    {
        var fd = InotifyInit1(Cloexec);
        if (fd >= 0)
        {
            new Thread(() => Read(fd, onEvent)) { IsBackground = true, Name = threadName }.Start();
        }
        return fd;
    }

    public static int AddWatch(int fd, string path, uint mask) => InotifyAddWatch(fd, path, mask);

    public static void RemoveWatch(int fd, int wd) => _ = InotifyRmWatch(fd, wd);

    /// <summary>Asks the descriptor's thread to close it and end (within a second).</summary>
    public static void Close(int fd)
    {
        if (fd >= 0)
        {
            Closing[fd] = true;
        }
    }

    private static unsafe void Read(int fd, Action<int, uint, string> onEvent)
    {
        var buffer = new byte[64 * 1024];
        fixed (byte* start = buffer)
        {
            while (true)
            {
                // Wait for events a second at a time, so that a request to close is seen.
                var ready = new PollFd { Fd = fd, Events = PollIn };
                var polled = Poll(&ready, 1, 1000);
                if (Closing.TryRemove(fd, out _))
                {
                    _ = PtyNative.Close(fd);
                    return;
                }
                if (polled <= 0)
                {
                    continue; // a timeout, or EINTR
                }
                var n = PtyNative.Read(fd, start, buffer.Length);
                if (n <= 0)
                {
                    if (n < 0 && Marshal.GetLastPInvokeError() == 4)
                    {
                        continue; // EINTR
                    }
                    return; // closed
                }
                // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }
                for (var at = 0; at + 16 <= n;)
                {
                    var wd = BitConverter.ToInt32(buffer, at);
                    var mask = BitConverter.ToUInt32(buffer, at + 4);
                    var length = BitConverter.ToInt32(buffer, at + 12);
                    if (length < 0 || at + 16 + length > n)
                    {
                        break; // not a whole event: never from inotify
                    }
                    var name = length > 0 ? System.Text.Encoding.UTF8.GetString(buffer, at + 16, length).TrimEnd('\0') : "";
                    at += 16 + length;
                    onEvent(wd, mask, name);
                }
            }
        }
    }

    private const short PollIn = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, nuint count, int timeout);

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int InotifyInit1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int InotifyAddWatch(int fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "inotify_rm_watch", SetLastError = true)]
    private static partial int InotifyRmWatch(int fd, int wd);
}

/// <summary>
/// "Something changed since the last look": <see cref="Set"/> from the events' thread, <see cref="WaitAsync"/> by one reader,
/// which returns at once if a change came meanwhile.
/// </summary>
internal sealed class ChangeLatch
{
    private readonly Lock _lock = new();
    private TaskCompletionSource? _waiter;
    private bool _changed;

    public void Set()
    {
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            _changed = true;
            waiter = _waiter;
            _waiter = null;
        }
        waiter?.TrySetResult();
    }

    /// <summary>True when a change came since the previous wait; false after <paramref name="timeout"/> without one.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task wait;
        lock (_lock)
        {
            if (_changed)
            {
                _changed = false;
                return true;
            }
            _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wait = _waiter.Task;
        }
        try
        {
            await wait.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            return false;
        }
        lock (_lock)
        {
            _changed = false;
        }
        return true;
    }
}
