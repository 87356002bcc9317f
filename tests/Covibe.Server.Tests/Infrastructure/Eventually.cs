using System.Diagnostics;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>Polls until something a user would wait for has happened, or fails saying what did not.</summary>
public static class Eventually
{
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value;
            }
            watch.Elapsed.ShouldBeLessThan(limit, $"{what} (last seen: {value})");
            await Task.Delay(50);
        }
    }

    public static Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(condition, ok => ok, what, timeout);

    /// <summary>
    /// Checks that <paramref name="holds"/> stays true for all of <paramref name="duration"/> (what must not happen, while
    /// the server does its periodic work), failing at the first moment it does not.
    /// </summary>
    public static async Task HoldsAsync<T>(Func<Task<T>> probe, Func<T, bool> holds, string what, TimeSpan duration)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < duration)
        {
            var value = await probe();
            holds(value).ShouldBeTrue($"{what} (seen after {watch.Elapsed.TotalSeconds:0.0} s: {value})");
            await Task.Delay(100);
        }
    }
}
