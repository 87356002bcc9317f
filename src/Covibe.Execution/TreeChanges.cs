using System.Collections.Concurrent;

namespace Covibe.Execution;

/// <summary>
/// Wakes a reader when anything in a directory tree on this machine changes (a file written, made, removed or moved):
/// Linux inotify, one descriptor and one thread for every watched tree, a watch per directory (new ones joined as they
/// appear; never through a symlink). Its <c>.git</c> is watched at its top only: a commit or a checkout rewrites the index
/// or HEAD there, which changes what the tree has checked out without touching a file of it. A tree larger than <see cref="MaxDirectories"/> is watched
/// in part: its waits also end on their timeout, so a reader that refreshes then still sees everything.
/// </summary>
public sealed class TreeChanges : IDisposable
{
    public const int MaxDirectories = 20_000;

    private const uint Mask = Inotify.Modify | Inotify.CloseWrite | Inotify.MovedFrom | Inotify.MovedTo | Inotify.Create | Inotify.Delete
        | Inotify.OnlyDirectory | Inotify.DontFollow;

    private readonly int _fd;
    private readonly ConcurrentDictionary<int, (TreeWatch Tree, string Path, bool Descend)> _directories = new();
    private readonly Lock _lock = new();

    public TreeChanges() => _fd = Inotify.Start("covibe tree changes", OnEvent);

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
                var wd = Inotify.AddWatch(_fd, path, Mask);
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
                    Inotify.RemoveWatch(_fd, wd);
                }
            }
            tree.Directories.Clear();
        }
    }

    private void OnEvent(int wd, uint mask, string name)
    {
        if (!_directories.TryGetValue(wd, out var entry))
        {
            return;
        }
        if ((mask & Inotify.Ignored) != 0)
        {
            lock (_lock)
            {
                _directories.TryRemove(wd, out _);
                entry.Tree.Directories.Remove(wd);
            }
            return;
        }
        if ((mask & Inotify.IsDirectory) != 0 && (mask & (Inotify.Create | Inotify.MovedTo)) != 0 && entry.Descend)
        {
            Add(entry.Tree, Path.Combine(entry.Path, name), descendInto: name != ".git");
        }
        entry.Tree.Changed();
    }

    public void Dispose() => Inotify.Close(_fd);
}

/// <summary>One watched tree: <see cref="WaitAsync"/> returns at the next change after the last wait (at once if one came meanwhile).</summary>
public sealed class TreeWatch : IDisposable
{
    private readonly TreeChanges _owner;
    private readonly ChangeLatch _latch = new();

    internal TreeWatch(TreeChanges owner) => _owner = owner;

    internal HashSet<int> Directories { get; } = [];

    internal bool Disposed { get; private set; }

    /// <summary>Some of the tree is not watched (too large, out of inotify watches): refresh on the wait's timeout too.</summary>
    public bool Partial { get; internal set; }

    internal void Changed() => _latch.Set();

    /// <summary>True when the tree changed since the previous wait; false after <paramref name="timeout"/> without a change.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _latch.WaitAsync(timeout, cancellationToken);

    public void Dispose()
    {
        Disposed = true;
        _owner.Remove(this);
    }
}
