using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Covibe.Execution;

/// <summary>
/// Wakes a reader when anything in a directory tree on this machine changes (a file written, made, removed or moved):
/// Linux inotify, one descriptor and one thread for every watched tree, a watch per directory (new ones joined as they
/// appear; never through a symlink). Its <c>.git</c> is watched at its top only: a commit or a checkout rewrites the index
/// or HEAD there, which changes what the tree has checked out without touching a file of it. A tree larger than <see cref="MaxDirectories"/> is watched
/// in part: its waits also end on their timeout, so a reader that refreshes then still sees everything.
/// </summary>
public sealed partial class TreeChanges : IDisposable
{
    public const int MaxDirectories = 20_000;

    private const uint InModify = 0x2;
    private const uint InCloseWrite = 0x8;
    private const uint InMovedFrom = 0x40;
    private const uint InMovedTo = 0x80;
    private const uint InCreate = 0x100;
    private const uint InDelete = 0x200;
    private const uint InIgnored = 0x8000;
    private const uint InIsDir = 0x40000000;
    private const uint InOnlyDir = 0x01000000;
    private const uint InDontFollow = 0x02000000;
    private const uint Mask = InModify | InCloseWrite | InMovedFrom | InMovedTo | InCreate | InDelete | InOnlyDir | InDontFollow;
    private const int InCloexec = 0x80000;

    private readonly int _fd;
    private readonly ConcurrentDictionary<int, (TreeWatch Tree, string Path, bool Descend)> _directories = new();
    private readonly Lock _lock = new();

    public TreeChanges()
    {
        _fd = InotifyInit1(InCloexec);
        if (_fd >= 0)
        {
            new Thread(ReadEvents) { IsBackground = true, Name = "covibe tree changes" }.Start();
        }
    }

    /// <summary>Watches the tree under <paramref name="root"/>. Dispose the watch when done.</summary>
    public TreeWatch Watch(string root)
    {
        var tree = new TreeWatch(this);
        Add(tree, root);
        return tree;
    }

    private void Add(TreeWatch tree, string directory, bool descendInto = true)
    {
        if (_fd < 0 || tree.Disposed)
        {
            tree.Partial = true;
            return;
        }
        var pending = new Stack<(string Path, bool Descend)>([(directory, descendInto)]);
        while (pending.Count > 0)
        {
            var (path, descend) = pending.Pop();
            lock (_lock)
            {
                if (tree.Directories.Count >= MaxDirectories)
                {
                    tree.Partial = true;
                    return;
                }
                var wd = InotifyAddWatch(_fd, path, Mask);
                if (wd < 0)
                {
                    tree.Partial = true; // out of watches, or gone meanwhile
                    continue;
                }
                _directories[wd] = (tree, path, descend);
                tree.Directories.Add(wd);
            }
            if (!descend)
            {
                continue;
            }
            try
            {
                foreach (var child in new DirectoryInfo(path).EnumerateDirectories())
                {
                    if (child.LinkTarget is null)
                    {
                        pending.Push((child.FullName, child.Name != ".git"));
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile, or not readable: nothing to watch there
            }
        }
    }

    internal void Remove(TreeWatch tree)
    {
        lock (_lock)
        {
            foreach (var wd in tree.Directories)
            {
                if (_directories.TryRemove(wd, out _))
                {
                    _ = InotifyRmWatch(_fd, wd);
                }
            }
            tree.Directories.Clear();
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
                    return;
                }
                // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }
                for (var at = 0; at + 16 <= n;)
                {
                    var wd = BitConverter.ToInt32(buffer, at);
                    var mask = BitConverter.ToUInt32(buffer, at + 4);
                    var length = BitConverter.ToInt32(buffer, at + 12);
                    var name = length > 0 ? System.Text.Encoding.UTF8.GetString(buffer, at + 16, length).TrimEnd('\0') : "";
                    at += 16 + length;
                    if (!_directories.TryGetValue(wd, out var entry))
                    {
                        continue;
                    }
                    if ((mask & InIgnored) != 0)
                    {
                        lock (_lock)
                        {
                            _directories.TryRemove(wd, out _);
                            entry.Tree.Directories.Remove(wd);
                        }
                        continue;
                    }
                    if ((mask & InIsDir) != 0 && (mask & (InCreate | InMovedTo)) != 0 && entry.Descend)
                    {
                        Add(entry.Tree, Path.Combine(entry.Path, name), descendInto: name != ".git");
                    }
                    entry.Tree.Changed();
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

/// <summary>One watched tree: <see cref="WaitAsync"/> returns at the next change after the last wait (at once if one came meanwhile).</summary>
public sealed class TreeWatch : IDisposable
{
    private readonly TreeChanges _owner;
    private readonly Lock _lock = new();
    private TaskCompletionSource? _waiter;
    private bool _changed;

    internal TreeWatch(TreeChanges owner) => _owner = owner;

    internal HashSet<int> Directories { get; } = [];

    internal bool Disposed { get; private set; }

    /// <summary>Some of the tree is not watched (too large, out of inotify watches): refresh on the wait's timeout too.</summary>
    public bool Partial { get; internal set; }

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

    /// <summary>True when the tree changed since the previous wait; false after <paramref name="timeout"/> without a change.</summary>
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

    public void Dispose()
    {
        Disposed = true;
        _owner.Remove(this);
    }
}
