using Covibe.Server.Http;

namespace Covibe.Server.Tests;

/// <summary>The limit across nodes counts a burst once, even when it straddles the end of a window of the clock.</summary>
public sealed class SlidingWindowTests
{
    [Theory]
    // Four attempts just before the minute turned, one just after: five within a minute, over a limit of four.
    [InlineData(4, 1, 59_000, 60_000, 4.93)]
    // Long after: the previous window hardly counts any more.
    [InlineData(4, 1, 1_000, 60_000, 1.07)]
    [InlineData(0, 3, 30_000, 60_000, 3.0)]
    public void TheEstimate_WeighsThePreviousWindowByWhatIsStillWithinOneWindow(long previous, long current, long left, long length, double expected) =>
        RedisRateLimits.SlidingCount(previous, current, left, length).ShouldBe(expected, 0.01);
}
