namespace Covibe.Server.Tests.Infrastructure;

/// <summary>A clock the test moves by hand, for expiry of tokens and invites.</summary>
public sealed class ManualClock : TimeProvider
{
    private DateTimeOffset _now = TimeProvider.System.GetUtcNow();

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
