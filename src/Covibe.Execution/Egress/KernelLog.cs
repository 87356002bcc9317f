using System.Globalization;
using System.Text;

namespace Covibe.Execution.Egress;

/// <summary>A line of the kernel's log: when (microseconds since boot) and what.</summary>
public readonly record struct KernelLine(long Microseconds, string Message);

/// <summary>
/// The kernel's log as it is written (<c>/dev/kmsg</c>, readable by root), for every subscriber in this process from one
/// reader thread: where the firewall's refusals of teams' connections are told (<see cref="EgressRules"/> logs them).
/// </summary>
public static class KernelLog
{
    private const string Device = "/dev/kmsg";
    private static readonly Lock Gate = new();
    private static readonly List<Action<KernelLine>> Subscribers = [];
    private static Thread? _reader;

    /// <summary>Microseconds since boot now on the monotonic clock, which the kernel's log uses too (not counting time suspended).</summary>
    public static long Now() => (long)(System.Diagnostics.Stopwatch.GetTimestamp() / (System.Diagnostics.Stopwatch.Frequency / 1_000_000.0));

    /// <summary>Calls <paramref name="onLine"/> with each line written from now on (and some before: filter by time). Null when subscribed, else why not.</summary>
    public static string? Subscribe(Action<KernelLine> onLine)
    {
        lock (Gate)
        {
            if (_reader is null)
            {
                FileStream stream;
                try
                {
                    stream = new FileStream(Device, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return $"the kernel's log ({Device}) cannot be read: {e.Message}";
                }
                _reader = new Thread(() => Read(stream)) { IsBackground = true, Name = "kernel log" };
                _reader.Start();
            }
            Subscribers.Add(onLine);
            return null;
        }
    }

    public static void Unsubscribe(Action<KernelLine> onLine)
    {
        lock (Gate)
        {
            Subscribers.Remove(onLine);
        }
    }

    /// <summary>One record of <c>/dev/kmsg</c> (<c>priority,sequence,microseconds,flags;message</c>), or null.</summary>
    public static KernelLine? ParseRecord(string record)
    {
        var semicolon = record.IndexOf(';', StringComparison.Ordinal);
        var fields = semicolon > 0 ? record[..semicolon].Split(',') : [];
        if (fields.Length < 3 || !long.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var microseconds))
        {
            return null;
        }
        return new KernelLine(microseconds, record[(semicolon + 1)..].TrimEnd('\n'));
    }

    private static void Read(FileStream stream)
    {
        // Each read returns one record.
        var buffer = new byte[16384];
        while (true)
        {
            int read;
            try
            {
                read = stream.Read(buffer, 0, buffer.Length);
            }
            catch (IOException)
            {
                continue; // records overwritten before they were read (EPIPE): go on from the next
            }
            if (read <= 0)
            {
                Thread.Sleep(100);
                continue;
            }
            if (ParseRecord(Encoding.UTF8.GetString(buffer, 0, read)) is not { } line)
            {
                continue;
            }
            Action<KernelLine>[] subscribers;
            lock (Gate)
            {
                subscribers = [.. Subscribers];
            }
            foreach (var subscriber in subscribers)
            {
                subscriber(line);
            }
        }
    }
}

/// <summary>A connection the firewall refused for a team (<see cref="EgressRules"/>'s log line): the team's key, where to.</summary>
public sealed record RefusedConnection(string Key, string Destination, int Port)
{
    /// <summary>Reads <c>covibe-egress KEY IN=.. OUT=.. SRC=.. DST=a.b.c.d ... PROTO=TCP SPT=.. DPT=443 ..</c>; null for any other line.</summary>
    public static RefusedConnection? Parse(string message)
    {
        var start = message.IndexOf(TeamEgress.LogPrefix, StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }
        var words = message[(start + TeamEgress.LogPrefix.Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string? Field(string name) => words.FirstOrDefault(w => w.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];
        return words.Length > 0 && words[0].Length == 9 && Field("DST") is { } destination
            && int.TryParse(Field("DPT"), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            ? new RefusedConnection(words[0], destination, port)
            : null;
    }
}
