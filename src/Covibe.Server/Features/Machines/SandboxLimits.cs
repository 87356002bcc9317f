using Covibe.Server.Features.Cluster;

namespace Covibe.Server.Features.Machines;

/// <summary>
/// The per-team limits of sandboxed programs on this machine (<see cref="Execution.Local.TeamCgroups"/>): <see cref="Groups"/>
/// is null, and <see cref="Why"/> says why, where they cannot be enforced here or the operator turned them off.
/// </summary>
public sealed class SandboxLimits : IDisposable
{
    public SandboxLimits(IsolationOptions isolation, ThisNode node)
    {
        if (!isolation.IsSandboxed || !isolation.TeamLimits)
        {
            Why = isolation.IsSandboxed ? "turned off (Covibe:Isolation:TeamLimits=false)" : "no sandbox";
            return;
        }
        // This server's own group among others on the machine: named after the node (kept in its data directory, so a
        // restarted server finds the groups its agents still run in).
        Groups = Execution.Local.TeamCgroups.Detect(node.Id, isolation.Limits(), out var why);
        Why = why;
    }

    public Execution.Local.TeamCgroups? Groups { get; }

    public string? Why { get; }

    /// <summary>At the server's stop: the groups of teams with nothing left running go.</summary>
    public void Dispose() => Groups?.RemoveEmpty();
}
