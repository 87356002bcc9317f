using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Vms;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>The agents' answer to what runs on VMs. An agent on a VM has the VM's id as its target (ids are unique across VMs and boxes).</summary>
internal sealed class VmAgents(IDbContextFactory<CovibeDb> dbs) : IVmAgents
{
    public async Task<IReadOnlyDictionary<string, int>> CountRunningAsync(IReadOnlyCollection<string> vmIds, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Agents
            .Where(a => a.Target != null && vmIds.Contains(a.Target) && !AgentStatuses.Final.Contains(a.Status))
            .GroupBy(a => a.Target!)
            .Select(g => new { g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.Key, g => g.Count, cancellationToken);
    }

    public async Task<IReadOnlyList<VmAgent>> StartedOnAsync(string vmId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Agents.AsNoTracking()
            .Where(a => a.Target == vmId && !AgentStatuses.Final.Contains(a.Status) && a.RuntimeDirectory != null)
            .Select(a => new VmAgent(a.Id, a.RuntimeDirectory!, a.Pid, a.PidStartTime))
            .ToListAsync(cancellationToken);
    }
}
