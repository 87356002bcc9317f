using System.Globalization;

namespace Covibe.Execution;

/// <summary>What <c>/proc</c> says about a process: enough to tell "still ours" from "PID reused".</summary>
internal static class ProcFs
{
    /// <summary>Start time in clock ticks since boot (field 22 of /proc/PID/stat), or null if there is no such process.</summary>
    public static long? StartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state); field 22 is fields[19]. A zombie has exited already.
        if (fields[0] == "Z")
        {
            return null;
        }
        return long.Parse(fields[19], CultureInfo.InvariantCulture);
    }

    public static IEnumerable<int> Children(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/task/{pid}/children");
        }
        catch (IOException)
        {
            yield break;
        }
        foreach (var part in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            yield return int.Parse(part, CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Every process in process group <paramref name="groupId"/> (field 5 of /proc/PID/stat): an agent's wrapper, the agent and all it started.</summary>
    public static List<int> GroupMembers(int groupId) => WithStatField(2, groupId);

    /// <summary>Every process whose session id is <paramref name="sessionId"/> (field 6 of /proc/PID/stat): a terminal's leader and all its jobs.</summary>
    public static List<int> SessionMembers(int sessionId) => WithStatField(3, sessionId);

    /// <summary>Processes whose /proc/PID/stat field (counted after the command name: 0 state, 1 ppid, 2 pgrp, 3 session) equals <paramref name="value"/>.</summary>
    private static List<int> WithStatField(int field, int value)
    {
        var members = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }
            string stat;
            try
            {
                stat = File.ReadAllText($"/proc/{pid}/stat");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ', 5);
            if (fields.Length > field && fields[field] == value.ToString(CultureInfo.InvariantCulture))
            {
                members.Add(pid);
            }
        }
        return members;
    }

    /// <summary>The process's ID in its own (innermost) PID namespace: the last field of NSpid in /proc/PID/status.</summary>
    public static int? InnermostPid(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
            return line is null ? pid : int.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[^1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The first descendant of <paramref name="pid"/> (breadth first, itself included) whose argv satisfies <paramref name="match"/>.</summary>
    public static int? FindDescendant(int pid, Func<string[], bool> match)
    {
        var queue = new Queue<int>([pid]);
        for (var seen = 0; queue.Count > 0 && seen < 64; seen++)
        {
            var candidate = queue.Dequeue();
            string[] argv;
            try
            {
                argv = File.ReadAllText($"/proc/{candidate}/cmdline").Split('\0');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if (match(argv))
            {
                return candidate;
            }
            foreach (var child in Children(candidate))
            {
                queue.Enqueue(child);
            }
        }
        return null;
    }
}
