using System.Globalization;

namespace Covibe.Server.Http;

/// <summary>
/// Part of a log read from a position: <see cref="Data"/> starts at <see cref="Position"/> (past the position asked for
/// when what was between cannot be read any more); the next read starts at <see cref="Next"/>. <see cref="Complete"/>:
/// nothing will ever follow <see cref="Next"/> (the job is over and this is the end of its log).
/// </summary>
public sealed record LogPage(long Position, byte[] Data, bool Complete)
{
    public long Next => Position + Data.Length;
}

/// <summary>
/// The one way to read a log from a position over REST (an agent's output, a deploy's log, a box's log):
/// <c>GET ...?from=N&amp;wait=S</c> answers the bytes from <c>N</c> with the headers <c>Covibe-Position</c> (where they
/// start), <c>Covibe-Next</c> (ask again from there) and <c>Covibe-Complete</c>. With <c>wait</c> (seconds, at most
/// <see cref="MaxWaitSeconds"/>), an answer that has nothing new waits for more while the job runs: a long poll.
/// </summary>
public static class LogPages
{
    public const int MaxWaitSeconds = 30;

    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    /// <summary>Refuses a negative <c>from</c> or <c>wait</c>, naming the field.</summary>
    public static void Check(long? from, int? wait)
    {
        var v = new Validator();
        CheckFrom(v, from);
        if (wait is < 0 or > MaxWaitSeconds)
        {
            v.Fail("wait", $"'wait' is how many seconds to wait for more, from 0 to {MaxWaitSeconds}.");
        }
        if (!v.IsValid)
        {
            throw RequestRefusedException.Invalid(v);
        }
    }

    /// <summary>Notes a negative <c>from</c> on <paramref name="v"/>.</summary>
    public static void CheckFrom(Validator v, long? from)
    {
        if (from is < 0)
        {
            v.Fail("from", "'from' must be 0 or more (a position from a previous answer).");
        }
    }

    /// <summary>
    /// Reads with <paramref name="read"/> until it answers something worth answering (<paramref name="answerNow"/>: new
    /// bytes, or nothing more to wait for), or <paramref name="wait"/> seconds have passed; it is asked again every 200 ms.
    /// </summary>
    public static async Task<T> WaitAsync<T>(Func<CancellationToken, Task<T>> read, Func<T, bool> answerNow, int? wait, TimeProvider time, CancellationToken cancellationToken)
    {
        var until = TimeSpan.FromSeconds(Math.Clamp(wait ?? 0, 0, MaxWaitSeconds));
        var started = time.GetTimestamp();
        while (true)
        {
            var answer = await read(cancellationToken);
            if (answerNow(answer) || time.GetElapsedTime(started) >= until)
            {
                return answer;
            }
            await Task.Delay(Poll, time, cancellationToken);
        }
    }

    /// <summary>The page as bytes of <paramref name="contentType"/>, with the contract's headers.</summary>
    public static IResult Answer(HttpResponse response, LogPage page, string contentType)
    {
        response.Headers["Covibe-Position"] = page.Position.ToString(CultureInfo.InvariantCulture);
        response.Headers["Covibe-Next"] = page.Next.ToString(CultureInfo.InvariantCulture);
        response.Headers["Covibe-Complete"] = page.Complete ? "true" : "false";
        return TypedResults.Bytes(page.Data, contentType);
    }
}
