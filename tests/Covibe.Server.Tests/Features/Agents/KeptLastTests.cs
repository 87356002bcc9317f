using Covibe.Server.Features.Agents;

namespace Covibe.Server.Tests;

/// <summary>The last few values kept (fast unit tests).</summary>
public sealed class KeptLastTests
{
    [Fact]
    public void TheOldestKey_IsLetGoFirst_PastTheCapacity()
    {
        var kept = new KeptLast<string, int>(2);
        kept.Add("a", 1);
        kept.Add("b", 2);
        kept.Add("c", 3);
        kept.Count.ShouldBe(2);
        kept.TryGetValue("a", out _).ShouldBeFalse("the oldest went first");
        kept.TryGetValue("b", out var b).ShouldBeTrue();
        b.ShouldBe(2);
        kept.TryGetValue("c", out var c).ShouldBeTrue();
        c.ShouldBe(3);
    }

    [Fact]
    public void WithNoCapacity_NothingIsKept()
    {
        var kept = new KeptLast<string, int>(0);
        kept.Add("a", 1);
        kept.Count.ShouldBe(0);
        kept.TryGetValue("a", out _).ShouldBeFalse();
    }
}
