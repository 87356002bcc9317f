using System.Diagnostics;
using Covibe.Execution;

namespace Covibe.Server.Tests;

/// <summary>Agent logs are read when written: the inotify watch that wakes the reader.</summary>
public sealed class FileChangesTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("covibe-changes-").FullName;
    private readonly FileChanges _changes = new();

    [Fact]
    public async Task Wait_EndsAtTheWrite_NotAtTheTimeout_AndAQuietFileWaitsItsTimeout()
    {
        _changes.Available.ShouldBeTrue("inotify is there on Linux");
        var path = Path.Combine(_directory, "output.log");
        File.WriteAllText(path, "");
        using var watch = _changes.Watch(path);
        watch.Notifies.ShouldBeTrue();

        var quiet = Stopwatch.StartNew();
        await watch.WaitAsync(TimeSpan.FromMilliseconds(300), CancellationToken.None);
        quiet.Elapsed.ShouldBeGreaterThan(TimeSpan.FromMilliseconds(250));

        var waited = Stopwatch.StartNew();
        var wait = watch.WaitAsync(TimeSpan.FromSeconds(20), CancellationToken.None);
        await Task.Delay(100);
        wait.IsCompleted.ShouldBeFalse();
        await File.AppendAllTextAsync(path, "a line\n");
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
        waited.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(5));

        // A write between two waits is not lost: the next wait returns at once.
        await File.AppendAllTextAsync(path, "another\n");
        await Task.Delay(100);
        var next = Stopwatch.StartNew();
        await watch.WaitAsync(TimeSpan.FromSeconds(20), CancellationToken.None);
        next.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Watch_OfASymlinkAnAgentPlanted_IsNotWokenByWritesToItsTarget()
    {
        var target = Path.Combine(_directory, "server-file");
        File.WriteAllText(target, "");
        var link = Path.Combine(_directory, "output.log");
        File.CreateSymbolicLink(link, target);
        using var watch = _changes.Watch(link);

        var timer = Stopwatch.StartNew();
        var wait = watch.WaitAsync(TimeSpan.FromMilliseconds(500), CancellationToken.None);
        await File.AppendAllTextAsync(target, "the server's secret\n");
        await wait;
        timer.Elapsed.ShouldBeGreaterThan(TimeSpan.FromMilliseconds(450), "the target's writes are not followed: the wait lasts its timeout");
    }

    public void Dispose()
    {
        _changes.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
