using System.ComponentModel.DataAnnotations;
using Covibe.Execution.Local;

namespace Covibe.Server.Features.Machines;

/// <summary>
/// <c>Covibe:Isolation</c>: how members' code runs on the server's own machine. By default in a
/// bubblewrap sandbox (<c>sandbox</c>); running it with the server's privileges (<c>unsandboxed</c>)
/// is an operator's explicit choice, for a machine that only trusted people use.
/// </summary>
public sealed class IsolationOptions
{
    public const string Section = "Covibe:Isolation";
    public const string Sandbox = "sandbox";
    public const string Unsandboxed = "unsandboxed";

    [RegularExpression("^(sandbox|unsandboxed)$", ErrorMessage = "Covibe:Isolation:HostExecution must be 'sandbox' (the default) or 'unsandboxed'.")]
    public string HostExecution { get; set; } = Sandbox;

    /// <summary>The bubblewrap program; unset: <c>bwrap</c> on the PATH.</summary>
    public string? Bubblewrap { get; set; }

    /// <summary>The user sandboxed programs run as when the server runs as root (no such account needs to exist).</summary>
    [Range(1, 4_000_000_000)]
    public uint SandboxUid { get; set; } = 10001;

    [Range(1, 4_000_000_000)]
    public uint SandboxGid { get; set; } = 10001;

    /// <summary>More directories of this machine that sandboxed programs see, read-only (e.g. where the agents' tools are installed).</summary>
    public List<string> SandboxReadOnlyPaths { get; set; } = [];

    /// <summary>False: sandboxed programs get no network at all (Claude Code then cannot reach its API).</summary>
    public bool SandboxNetwork { get; set; } = true;

    /// <summary>
    /// True: sandboxed programs share this machine's network, its loopback included (the server's listeners, every
    /// team's preview, local databases). False (the default, when the server runs as root): a network of their own
    /// that reaches the internet (through slirp4netns), not this machine.
    /// </summary>
    public bool SandboxHostNetwork { get; set; }

    /// <summary>True: sandboxed programs may also reach private and link-local networks (a company's own git server), not only the internet.</summary>
    public bool SandboxPrivateNetworks { get; set; }

    /// <summary>False: no limits per team (each team's sandboxed programs share the machine with everything else).</summary>
    public bool TeamLimits { get; set; } = true;

    /// <summary>Memory all of one team's sandboxed programs may use together, in MiB; 0: half of this machine's.</summary>
    [Range(0, 16_777_216)]
    public int TeamMemoryMiB { get; set; }

    /// <summary>CPUs all of one team's sandboxed programs may use together; 0: all but one of this machine's (at least half of one).</summary>
    [Range(0, 4096)]
    public double TeamCpus { get; set; }

    /// <summary>Processes one team's sandboxed programs may have at once (a fork bomb stops here).</summary>
    [Range(16, 1_000_000)]
    public int TeamProcesses { get; set; } = 1024;

    /// <summary>The limits, with the machine's own figures for the automatic ones.</summary>
    public Execution.Local.TeamLimits Limits()
    {
        var memory = TeamMemoryMiB > 0 ? TeamMemoryMiB * 1024L * 1024 : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
        var cpus = TeamCpus > 0 ? TeamCpus : Math.Max(0.5, Environment.ProcessorCount - 1);
        return new Execution.Local.TeamLimits(memory, cpus, TeamProcesses);
    }

    public bool IsSandboxed => HostExecution == Sandbox;
}
