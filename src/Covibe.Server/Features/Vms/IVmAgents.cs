namespace Covibe.Server.Features.Vms;

/// <summary>
/// The agents that run on VMs, as the agents' feature records them: the VM list shows how many run on each, and a
/// runner that connects is told which to follow again. Agents (above VMs) implement it, so VMs and runners never read
/// the agents' table.
/// </summary>
public interface IVmAgents
{
    /// <summary>How many unfinished agents run on each of <paramref name="vmIds"/> (VMs with none are absent).</summary>
    Task<IReadOnlyDictionary<string, int>> CountRunningAsync(IReadOnlyCollection<string> vmIds, CancellationToken cancellationToken);

    /// <summary>The unfinished agents on <paramref name="vmId"/> whose process was started there (they have a runtime directory).</summary>
    Task<IReadOnlyList<VmAgent>> StartedOnAsync(string vmId, CancellationToken cancellationToken);
}

/// <summary>An agent started on a VM: its runtime directory there, and its process once known.</summary>
public sealed record VmAgent(string AgentId, string RuntimeDirectory, int? Pid, long? StartTime);
