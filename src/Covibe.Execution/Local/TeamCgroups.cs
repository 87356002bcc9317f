using System.Globalization;
using System.Text.RegularExpressions;

namespace Covibe.Execution.Local;

/// <summary>What one team's sandboxed programs may use together: memory (bytes, swap not counted on top), CPUs, and processes.</summary>
public sealed record TeamLimits(long MemoryBytes, double Cpus, int Processes);

/// <summary>How often a team's limits stopped something: processes killed for memory, forks refused for the process limit.</summary>
public sealed record TeamLimitEvents(long OomKills, long ForksRefused);

/// <summary>
/// A control group per team for sandboxed programs on this machine (agents, terminals, previews), so one team's runaway
/// build, fork bomb or memory hog is stopped by its own limits and neither starves the others nor the server. Made
/// under this server's own cgroup, in a group of this server's (<c>covibe-&lt;instance&gt;</c>): cgroup v2 where the
/// machine delegates it (the server then moves itself into a leaf, <c>covibe-server</c>, as a delegated service does),
/// else the v1 <c>memory</c>, <c>pids</c> and <c>cpu</c> hierarchies. <see cref="Detect"/> answers null, saying why,
/// where neither can be written (a server that is not root, in most setups).
/// </summary>
public sealed partial class TeamCgroups
{
    private const string Root = "/sys/fs/cgroup";
    private readonly Dictionary<string, string> _bases; // controller ("" for v2) -> this server's group
    private readonly TeamLimits _limits;
    private readonly Lock _lock = new();
    private readonly HashSet<string> _made = [];

    private TeamCgroups(Dictionary<string, string> bases, TeamLimits limits, string kind)
    {
        _bases = bases;
        _limits = limits;
        Kind = kind;
    }

    /// <summary>Which cgroups hold the limits: <c>cgroup v2</c> or <c>cgroup v1</c>.</summary>
    public string Kind { get; }

    public TeamLimits Limits => _limits;

    /// <summary>The per-team groups of this server (<paramref name="instance"/> names it among others on the machine), or null and why not.</summary>
    public static TeamCgroups? Detect(string instance, TeamLimits limits, out string? why)
    {
        why = null;
        if (!SafeName().IsMatch(instance))
        {
            throw new ArgumentException($"Not a name for a cgroup: '{instance}'.", nameof(instance));
        }
        var lines = File.Exists("/proc/self/cgroup") ? File.ReadAllLines("/proc/self/cgroup") : [];
        var group = "covibe-" + instance;
        try
        {
            if (V1(lines, group) is { } v1)
            {
                return new TeamCgroups(v1, limits, "cgroup v1");
            }
            if (V2(lines, group) is { } v2)
            {
                return new TeamCgroups(v2, limits, "cgroup v2");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            why = $"the cgroups of this server cannot be written ({e.Message})";
            return null;
        }
        why = Native.IsRoot ? "this machine delegates no cgroup with the memory and pids controllers to this server"
            : "the server does not run as root, and no cgroup is delegated to its user";
        return null;
    }

    /// <summary>
    /// The team's group, made and limited the first time: the <c>cgroup.procs</c> files a process writes its PID into to
    /// join it (its children stay in it). Throws <see cref="IOException"/> when it cannot be made.
    /// </summary>
    public IReadOnlyList<string> Enter(string teamId)
    {
        if (!SafeName().IsMatch(teamId))
        {
            throw new ArgumentException($"Not a team id: '{teamId}'.", nameof(teamId));
        }
        var name = "team-" + teamId;
        lock (_lock)
        {
            if (_made.Add(teamId))
            {
                try
                {
                    Make(name);
                }
                catch
                {
                    _made.Remove(teamId);
                    throw;
                }
            }
        }
        return [.. _bases.Values.Select(b => Path.Combine(b, name, "cgroup.procs"))];
    }

    /// <summary>The teams whose group this server made (since its start).</summary>
    public IReadOnlyList<string> Teams
    {
        get
        {
            lock (_lock)
            {
                return [.. _made];
            }
        }
    }

    /// <summary>How often the team's limits stopped something so far (zeros for a team with no group).</summary>
    public TeamLimitEvents Events(string teamId)
    {
        var name = "team-" + teamId;
        if (_bases.TryGetValue("", out var v2))
        {
            return new TeamLimitEvents(Counter(Path.Combine(v2, name, "memory.events"), "oom_kill"), Counter(Path.Combine(v2, name, "pids.events"), "max"));
        }
        return new TeamLimitEvents(
            _bases.TryGetValue("memory", out var memory) ? Counter(Path.Combine(memory, name, "memory.oom_control"), "oom_kill") : 0,
            _bases.TryGetValue("pids", out var pids) ? Counter(Path.Combine(pids, name, "pids.events"), "max") : 0);
    }

    /// <summary>Removes the groups of teams with nothing left in them (at the server's stop; a group in use stays).</summary>
    public void RemoveEmpty()
    {
        foreach (var b in _bases.Values.Where(Directory.Exists))
        {
            foreach (var team in Directory.EnumerateDirectories(b, "team-*"))
            {
                try
                {
                    Directory.Delete(team); // rmdir: refused while a process is in it
                }
                catch (IOException)
                {
                    // Agents outlive the server: their group stays for the next start.
                }
            }
            try
            {
                Directory.Delete(b); // this server's own group, once no team's is left in it
            }
            catch (IOException)
            {
                // A team's group is still in use.
            }
        }
    }

    private void Make(string name)
    {
        var bytes = _limits.MemoryBytes.ToString(CultureInfo.InvariantCulture);
        var processes = _limits.Processes.ToString(CultureInfo.InvariantCulture);
        const int Period = 100_000;
        var quota = ((long)Math.Ceiling(_limits.Cpus * Period)).ToString(CultureInfo.InvariantCulture);
        foreach (var (controller, b) in _bases)
        {
            var dir = Path.Combine(b, name);
            Directory.CreateDirectory(dir);
            switch (controller)
            {
                case "":
                    Write(dir, "memory.max", bytes);
                    WriteIfThere(dir, "memory.swap.max", "0");
                    Write(dir, "pids.max", processes);
                    WriteIfThere(dir, "cpu.max", $"{quota} {Period}");
                    break;
                case "memory":
                    // memory+swap may never be below memory: raised first when raising, lowered after when lowering.
                    TryWrite(dir, "memory.memsw.limit_in_bytes", bytes);
                    Write(dir, "memory.limit_in_bytes", bytes);
                    WriteIfThere(dir, "memory.memsw.limit_in_bytes", bytes);
                    break;
                case "pids":
                    Write(dir, "pids.max", processes);
                    break;
                case "cpu":
                    Write(dir, "cpu.cfs_period_us", Period.ToString(CultureInfo.InvariantCulture));
                    Write(dir, "cpu.cfs_quota_us", quota);
                    break;
            }
        }
    }

    /// <summary>The v1 hierarchies (memory and pids needed, cpu if there), each with this server's group made under its own.</summary>
    private static Dictionary<string, string>? V1(string[] lines, string group)
    {
        var found = new Dictionary<string, string>();
        foreach (var line in lines)
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3 || parts[1].Length == 0)
            {
                continue;
            }
            foreach (var controller in parts[1].Split(','))
            {
                if (controller is "memory" or "pids" or "cpu" && Directory.Exists(Path.Combine(Root, parts[1])))
                {
                    found[controller] = Path.Combine(Root, parts[1]) + parts[2].TrimEnd('/');
                }
            }
        }
        if (!found.ContainsKey("memory") || !found.ContainsKey("pids"))
        {
            return null;
        }
        var bases = new Dictionary<string, string>();
        foreach (var (controller, own) in found)
        {
            var b = Path.Combine(own, group);
            Directory.CreateDirectory(b);
            bases[controller] = b;
        }
        return bases;
    }

    /// <summary>The v2 hierarchy, its memory and pids controllers handed down to this server's group.</summary>
    private static Dictionary<string, string>? V2(string[] lines, string group)
    {
        var path = lines.FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..];
        if (path is null || !File.Exists(Path.Combine(Root, "cgroup.controllers")))
        {
            return null;
        }
        var own = Root + path.TrimEnd('/');
        var available = File.ReadAllText(Path.Combine(own, "cgroup.controllers")).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (!available.Contains("memory") || !available.Contains("pids"))
        {
            return null;
        }
        var wanted = string.Join(' ', new[] { "memory", "pids", "cpu" }.Where(available.Contains).Select(c => "+" + c));
        if (!TryWrite(own, "cgroup.subtree_control", wanted))
        {
            // A group with processes in it hands no controller down (except the root): this server moves into a leaf of
            // its own first, as a service with a delegated cgroup does.
            var leaf = Path.Combine(own, "covibe-server");
            Directory.CreateDirectory(leaf);
            foreach (var pid in File.ReadAllLines(Path.Combine(own, "cgroup.procs")))
            {
                TryWrite(leaf, "cgroup.procs", pid);
            }
            Write(own, "cgroup.subtree_control", wanted);
        }
        var b = Path.Combine(own, group);
        Directory.CreateDirectory(b);
        Write(b, "cgroup.subtree_control", wanted);
        return new Dictionary<string, string> { [""] = b };
    }

    private static long Counter(string file, string key)
    {
        try
        {
            foreach (var line in File.ReadLines(file))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 2 && parts[0] == key && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var value))
                {
                    return value;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No group (yet): nothing stopped.
        }
        return 0;
    }

    private static void Write(string dir, string file, string value) => File.WriteAllText(Path.Combine(dir, file), value);

    private static void WriteIfThere(string dir, string file, string value)
    {
        if (File.Exists(Path.Combine(dir, file)))
        {
            Write(dir, file, value);
        }
    }

    private static bool TryWrite(string dir, string file, string value)
    {
        try
        {
            Write(dir, file, value);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,128}$")]
    private static partial Regex SafeName();
}
