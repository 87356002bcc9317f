using System.Collections.Concurrent;

namespace Covibe.Execution;

/// <summary>
/// Wakes a reader as soon as a file on this machine is written (Linux inotify: one descriptor and
/// one thread for every watched file), so an agent's output is read when it is written instead of on
/// the next poll. Watches never follow a symlink. Where inotify is unavailable, or a watch cannot be
/// made, a wait simply lasts its timeout: readers that poll still see everything.
/// </summary>
public sealed class FileChanges : IDisposable
{
    private readonly int _fd;
    private readonly ConcurrentDictionary<int, Watch> _watches = new();
    private readonly Lock _lock = new();

    public FileChanges() => _fd = Inotify.Start("covibe file changes", OnEvent);

    /// <summary>Whether waits end on writes (true) or only on their timeout.</summary>
    public bool Available => _fd >= 0;

    /// <summary>Watches <paramref name="path"/> for writes. Dispose the watch when done.</summary>
    public Watch Watch(string path)
    {
        lock (_lock)
        {
            var wd = _fd < 0 ? -1 : Inotify.AddWatch(_fd, path, Inotify.Modify | Inotify.CloseWrite | Inotify.DontFollow);
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
                Inotify.RemoveWatch(_fd, watch.Descriptor);
            }
        }
    }

    private void OnEvent(int wd, uint mask, string name)
    {
        if (_watches.TryGetValue(wd, out var watch))
        {
            if ((mask & Inotify.Ignored) != 0)
            {
                _watches.TryRemove(wd, out _); // the file went away: its waits poll
            }
            watch.Changed();
        }
    }

    public void Dispose() => Inotify.Close(_fd);
}

/// <summary>One watched file: <see cref="WaitAsync"/> returns at the next write after the last wait (or at once if one came meanwhile).</summary>
public sealed class Watch : IDisposable
{
    private readonly FileChanges? _owner;
    private readonly ChangeLatch _latch = new();

    internal Watch(FileChanges owner, int descriptor)
    {
        _owner = owner;
        Descriptor = descriptor;
    }

    internal int Descriptor { get; }

    /// <summary>Whether writes end a wait; false: each wait lasts its timeout (poll).</summary>
    public bool Notifies => Descriptor >= 0;

    internal void Changed() => _latch.Set();

    /// <summary>Completes when the file was written since the previous wait, or after <paramref name="timeout"/>.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _latch.WaitAsync(timeout, cancellationToken);

    public void Dispose() => _owner?.Remove(this);
}
