using Covibe.Server.Features.Agents;

namespace Covibe.Server.Tests;

/// <summary>Reads shared by the callers that ask for the same thing at once (fast unit tests, no server).</summary>
public sealed class SharedReadsTests
{
    [Fact]
    public async Task CallersAskingAtOnce_ShareOneRead_AndOnlyWhatIsKeptIsNotReadAgain()
    {
        var reads = new SharedReads<int, object>(keep: 1);
        var release = new TaskCompletionSource();
        var started = 0;
        async Task<object> Read(int key)
        {
            Interlocked.Increment(ref started);
            await release.Task;
            return new object();
        }
        var waiting = Enumerable.Range(0, 50).Select(_ => reads.GetAsync(1, Read, CancellationToken.None)).ToList();
        release.SetResult();
        var got = await Task.WhenAll(waiting);
        got.Distinct().Count().ShouldBe(1);
        started.ShouldBe(1);

        (await reads.GetAsync(1, Read, CancellationToken.None)).ShouldBeSameAs(got[0], "the last read is kept");
        await reads.GetAsync(2, Read, CancellationToken.None);
        (await reads.GetAsync(1, Read, CancellationToken.None)).ShouldNotBeSameAs(got[0], "only the last read is kept");
        reads.Reads.ShouldBe(3);
        reads.Count.ShouldBe(1);
    }

    [Fact]
    public async Task WithNothingKept_AReadThatIsDone_IsReadAgain()
    {
        var reads = new SharedReads<string, int>();
        var count = 0;
        (await reads.GetAsync("a", _ => Task.FromResult(Interlocked.Increment(ref count)), CancellationToken.None)).ShouldBe(1);
        (await reads.GetAsync("a", _ => Task.FromResult(Interlocked.Increment(ref count)), CancellationToken.None)).ShouldBe(2);
        reads.Count.ShouldBe(0);
    }

    [Fact]
    public async Task ACallerThatStopsWaiting_LeavesTheReadToTheOthers()
    {
        var reads = new SharedReads<int, string>(keep: 4);
        var release = new TaskCompletionSource();
        async Task<string> Read(int key)
        {
            await release.Task;
            return $"value {key}";
        }
        using var leaving = new CancellationTokenSource();
        var first = reads.GetAsync(1, Read, leaving.Token);
        var second = reads.GetAsync(1, Read, CancellationToken.None);
        await leaving.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(() => first.WaitAsync(TimeSpan.FromSeconds(10)));
        release.SetResult();
        (await second.WaitAsync(TimeSpan.FromSeconds(10))).ShouldBe("value 1");
        reads.Reads.ShouldBe(1);
    }

    [Fact]
    public async Task AFailedRead_ReachesEveryoneWaiting_AndIsNotKept()
    {
        var reads = new SharedReads<int, string>(keep: 4);
        var release = new TaskCompletionSource();
        async Task<string> Fail(int key)
        {
            await release.Task;
            throw new IOException("the disk is gone");
        }
        var waiting = Enumerable.Range(0, 3).Select(_ => reads.GetAsync(1, Fail, CancellationToken.None)).ToList();
        release.SetResult();
        foreach (var caller in waiting)
        {
            (await Should.ThrowAsync<IOException>(() => caller.WaitAsync(TimeSpan.FromSeconds(10)))).Message.ShouldBe("the disk is gone");
        }
        (await reads.GetAsync(1, _ => Task.FromResult("read again"), CancellationToken.None)).ShouldBe("read again");
        reads.Reads.ShouldBe(2);
    }
}
