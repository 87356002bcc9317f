using Covibe.Web;

namespace Covibe.Server.Tests;

/// <summary>A connection's message allowance (hub and terminals): a token bucket with no timer of its own.</summary>
public sealed class MessageRateTests
{
    [Fact]
    public void Allows_ABurstOfTwiceTheRate_ThenTheRateItself_AndRefillsOnlyAsTimePasses()
    {
        var clock = new ManualClock();
        var rate = new MessageRate(50, clock);

        Enumerable.Range(0, 100).Count(_ => rate.TryTake()).ShouldBe(100, "a burst of twice the rate");
        rate.TryTake().ShouldBeFalse();

        clock.Advance(TimeSpan.FromMilliseconds(100)); // 5 messages' worth
        Enumerable.Range(0, 10).Count(_ => rate.TryTake()).ShouldBe(5);

        // A long quiet spell refills to the burst, not beyond.
        clock.Advance(TimeSpan.FromMinutes(5));
        Enumerable.Range(0, 1000).Count(_ => rate.TryTake()).ShouldBe(100);

        // A steady 50 a second is never refused.
        for (var i = 0; i < 500; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(20));
            rate.TryTake().ShouldBeTrue($"message {i} at the allowed rate");
        }
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = 1_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
