using Covibe.Web;
using System.Text;
using Covibe.Server.Features.Agents;

namespace Covibe.Server.Tests;

/// <summary>
/// An agent's feed takes output by its position in the log: from the node that follows the agent, and from another
/// node's relay, where the same bytes may come twice (a takeover re-reads the log) or not at all (Redis was away).
/// </summary>
public sealed class AgentFeedTests
{
    private sealed class Watcher : ILiveWatcher
    {
        public List<OutputChunk> Chunks { get; } = [];
        public bool HasEnded { get; private set; }
        public void Offer(OutputChunk chunk) => Chunks.Add(chunk);
        public void Ended() => HasEnded = true;
    }

    private static AgentFeed Feed(long start = 0) => new("agent", "team", "owner", "local", null, 1024, start);

    private static byte[] B(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void OutputHeardTwice_OrOverlapping_IsOfferedOnce_InOrder()
    {
        var feed = Feed();
        var watcher = new Watcher();
        feed.TryGoLive(watcher, 0).ShouldBeTrue();
        feed.AppendAt(0, B("hello ")).ShouldNotBeNull();
        feed.AppendAt(0, B("hello ")).ShouldBeNull("already there");
        feed.AppendAt(3, B("lo world")).ShouldNotBeNull();
        feed.Position.ShouldBe(11);
        Encoding.UTF8.GetString([.. watcher.Chunks.SelectMany(c => c.Data)]).ShouldBe("hello world");
        watcher.Chunks.Select(c => c.Start).ShouldBe([0L, 6L]);
    }

    [Fact]
    public void OutputAfterAGap_DropsTheRing_SoReadersTakeTheMissingPartFromTheLog()
    {
        var feed = Feed();
        var watcher = new Watcher();
        feed.AppendAt(0, B("abc"));
        feed.TryGoLive(watcher, 3).ShouldBeTrue();
        feed.AppendAt(10, B("xyz"));
        feed.Position.ShouldBe(13);
        feed.RingStart.ShouldBe(10);
        feed.ChunkAt(1).ShouldBeNull("the old bytes are no longer in memory");
        // The live watcher got a chunk that does not follow what it has: it leaves the live set and reads the log.
        watcher.Chunks.Single().Start.ShouldBe(10);
    }

    [Fact]
    public void AFeedOpenedMidStream_StartsWhereItFirstHeardOfTheAgent()
    {
        var feed = Feed(start: 500);
        feed.Position.ShouldBe(500);
        feed.RingStart.ShouldBe(500);
        feed.AppendAt(400, B("x")).ShouldBeNull("before it opened: in the log");
        feed.AppendAt(500, B("y"))!.Start.ShouldBe(500);
    }

    [Fact]
    public void AnEndPastWhatTheFeedHas_MovesItToTheEnd_AndNothingComesAfter()
    {
        var feed = Feed();
        var watcher = new Watcher();
        feed.AppendAt(0, B("abc"));
        feed.TryGoLive(watcher, 3).ShouldBeTrue();
        feed.End("completed", 9);
        (feed.Position, feed.FinalStatus, watcher.HasEnded).ShouldBe((9L, "completed", true));
        feed.ChunkAt(3).ShouldBeNull("the last bytes are read from the log");
        feed.AppendAt(9, B("late")).ShouldBeNull();
        feed.End("failed");
        feed.FinalStatus.ShouldBe("completed");
    }

    [Fact]
    public void Watchers_CountsEveryoneFollowing_LiveOrCatchingUp_UntilTheyStop()
    {
        var feed = Feed();
        var live = new Watcher();
        using (feed.Watch())
        {
            var catchingUp = feed.Watch();
            feed.TryGoLive(live, 0).ShouldBeTrue();
            (feed.Watchers, feed.LiveWatchers).ShouldBe((2, 1), "the one catching up still counts: the window is sized on it");
            catchingUp.Dispose();
            catchingUp.Dispose();
            feed.Watchers.ShouldBe(1, "a handle let go twice counts once");
        }
        feed.Watchers.ShouldBe(0);
    }

    [Fact]
    public void TheGatheringWindow_GrowsWithEveryWatcher_EvenThoseCatchingUp()
    {
        // 1,000 watchers that all fell behind (none live) still gather output for 40 ms at 25,000 frames a second: a
        // window sized on the live ones would shrink to 4 ms and make them catch up through ten times as many frames.
        var feed = Feed();
        var batch = TimeSpan.FromMilliseconds(4);
        feed.GatheringWindow(batch, 25_000).ShouldBe(batch);
        var watching = Enumerable.Range(0, 1000).Select(_ => feed.Watch()).ToList();
        feed.LiveWatchers.ShouldBe(0);
        feed.GatheringWindow(batch, 25_000).ShouldBe(TimeSpan.FromMilliseconds(40));
        watching.ForEach(w => w.Dispose());
        feed.GatheringWindow(batch, 25_000).ShouldBe(batch);
    }

    [Fact]
    public void TheGatheringWindow_IsSizedOnTheNodesWatchers_SoTenAgentsWithAHundredEachGatherAsOneWithAThousand()
    {
        // Ten agents watched by 100 each would otherwise each gather for 4 ms and make ten times the node's frame budget.
        var open = new AgentFeeds();
        var node = open.Watchers;
        var feeds = Enumerable.Range(0, 10).Select(i => open.OpenElsewhere($"agent-{i}", "team", "owner", "local", 1024, 0)).ToList();
        var batch = TimeSpan.FromMilliseconds(4);
        var watching = feeds.SelectMany(f => Enumerable.Range(0, 100).Select(_ => f.Watch())).ToList();
        node.Value.ShouldBe(1000);
        feeds.ShouldAllBe(f => f.Watchers == 100 && f.GatheringWindow(batch, 25_000) == TimeSpan.FromMilliseconds(40));
        watching.ForEach(w => w.Dispose());
        node.Value.ShouldBe(0);
        feeds[0].GatheringWindow(batch, 25_000).ShouldBe(batch);
    }
}
