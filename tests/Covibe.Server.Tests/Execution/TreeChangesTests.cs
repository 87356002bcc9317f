using Covibe.Execution;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>The recursive watch on an agent's work tree: files anywhere in it, directories made later, the top of its .git; never through a link.</summary>
public sealed class TreeChangesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("covibe-tree-").FullName;
    private readonly string _outside = Directory.CreateTempSubdirectory("covibe-outside-").FullName;
    private readonly TreeChanges _trees = new();

    [Fact]
    public async Task AWriteAnywhereInTheTree_WakesTheWatch_AndANewDirectoryIsWatchedToo()
    {
        Directory.CreateDirectory(Path.Combine(_root, "src", "deep"));
        using var watch = _trees.Watch(_root);
        watch.Partial.ShouldBeFalse();

        await File.WriteAllTextAsync(Path.Combine(_root, "src", "deep", "a.txt"), "a");
        (await watch.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None)).ShouldBeTrue();

        Directory.CreateDirectory(Path.Combine(_root, "new"));
        (await watch.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None)).ShouldBeTrue();
        await Eventually.UntilAsync(async () =>
        {
            await File.WriteAllTextAsync(Path.Combine(_root, "new", "b.txt"), "b");
            return await watch.WaitAsync(TimeSpan.FromSeconds(1), CancellationToken.None);
        }, "a write in the new directory noticed");
    }

    [Fact]
    public async Task ACommitInItsGit_WakesTheWatch_ButItsObjectsAndALinkOutDoNot()
    {
        Directory.CreateDirectory(Path.Combine(_root, ".git", "objects", "ab"));
        File.CreateSymbolicLink(Path.Combine(_root, "out"), _outside);
        using var watch = _trees.Watch(_root);

        // The agent's own commit: its index and HEAD are rewritten at the top of .git.
        await File.WriteAllTextAsync(Path.Combine(_root, ".git", "index"), "new index");
        (await watch.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None)).ShouldBeTrue();
        // The same write may come as several events (modified, then closed): let them all arrive first.
        while (await watch.WaitAsync(TimeSpan.FromMilliseconds(300), CancellationToken.None))
        {
        }

        await File.WriteAllTextAsync(Path.Combine(_root, ".git", "objects", "ab", "cdef"), "object");
        await File.WriteAllTextAsync(Path.Combine(_outside, "elsewhere.txt"), "not the tree's");
        (await watch.WaitAsync(TimeSpan.FromMilliseconds(500), CancellationToken.None)).ShouldBeFalse();
    }

    public void Dispose()
    {
        _trees.Dispose();
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }
}
