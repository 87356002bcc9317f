using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Covibe.Execution;

/// <summary>
/// Wakes a reader as soon as a file on this machine is written (Linux inotify: one descriptor and
/// one thread for every watched file), so an agent's output is read when it is written instead of on
/// the next poll. Watches never follow a symlink. Where inotify is unavailable, or a watch cannot be
/// made, a wait simply lasts its timeout: readers that poll still see everything.
/// </summary>
public sealed partial class FileChanges : IDisposable
{
    private const uint InModify = 0x2;
    private const uint InCloseWrite = 0x8;
    private const uint InIgnored = 0x8000;
    private const uint InDontFollow = 0x02000000;
    private const int InCloexec = 0x80000;

    private readonly int _fd;
    private readonly ConcurrentDictionary<int, Watch> _watches = new();
    private readonly Lock _lock = new();

    public FileChanges()
    {
        _fd = InotifyInit1(InCloexec);
        if (_fd >= 0)
        {
            new Thread(ReadEvents) { IsBackground = true, Name = "covibe file changes" }.Start();
        }
    }

    /// <summary>Whether waits end on writes (true) or only on their timeout.</summary>
    public bool Available => _fd >= 0;

    /// <summary>Watches <paramref name="path"/> for writes. Dispose the watch when done.</summary>
    public Watch Watch(string path)
    {
        lock (_lock)
        {
            var wd = _fd < 0 ? -1 : InotifyAddWatch(_fd, path, InModify | InCloseWrite | InDontFollow);
            var watch = new Watch(this, wd);
            if (wd >= 0)
            {
                // The same file watched twice shares a descriptor: the newest watch gets its events.
                _watches[wd] = watch;
            }
            return watch;
        }
    }

    internal void Remove(Watch watch)
    {
        lock (_lock)
        {
            if (watch.Descriptor >= 0 && _watches.TryGetValue(watch.Descriptor, out var current) && current == watch)
            {
                _watches.TryRemove(watch.Descriptor, out _);
                _ = InotifyRmWatch(_fd, watch.Descriptor);
            }
        }
    }

    private unsafe void ReadEvents()
    {
        var buffer = new byte[64 * 1024];
        fixed (byte* start = buffer)
        {
            while (true)
            {
                var n = PtyNative.Read(_fd, start, buffer.Length);
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
                    at += 16 + length;
                    if (_watches.TryGetValue(wd, out var watch))
                    {
                        if ((mask & InIgnored) != 0)
                        {
                            _watches.TryRemove(wd, out _); // the file went away: its waits poll
                        }
                        watch.Changed();
                    }
                }
            }
        }
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            _ = PtyNative.Close(_fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int InotifyInit1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int InotifyAddWatch(int fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "inotify_rm_watch", SetLastError = true)]
    private static partial int InotifyRmWatch(int fd, int wd);
}

/// <summary>One watched file: <see cref="WaitAsync"/> returns at the next write after the last wait (or at once if one came meanwhile).</summary>
public sealed class Watch : IDisposable
{
    private readonly FileChanges? _owner;
    private readonly Lock _lock = new();
    private TaskCompletionSource? _waiter;
    private bool _changed;

    internal Watch(FileChanges owner, int descriptor)
    {
        _owner = owner;
        Descriptor = descriptor;
    }

    internal int Descriptor { get; }

    /// <summary>Whether writes end a wait; false: each wait lasts its timeout (poll).</summary>
    public bool Notifies => Descriptor >= 0;

    internal void Changed()
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

    /// <summary>Completes when the file was written since the previous wait, or after <paramref name="timeout"/>.</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task wait;
        lock (_lock)
        {
            if (_changed)
            {
                _changed = false;
                return;
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
        }
        lock (_lock)
        {
            _changed = false;
        }
    }

    public void Dispose() => _owner?.Remove(this);
}
