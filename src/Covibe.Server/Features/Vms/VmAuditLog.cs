using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Vms;

/// <summary>
/// Appends to a VM's audit log (seed 001: "audit logging all VM access"): sessions, agents started and controlled on it,
/// credentials made, changed and revoked. Nothing ever updates or deletes a line. Details never hold a secret.
/// </summary>
public sealed class VmAuditLog(IDbContextFactory<CovibeDb> dbs, TimeProvider time)
{
    public const string Member = "member";
    public const string Runner = "runner";
    public const string Server = "server";

    public async Task WriteAsync(string vmId, string teamId, string actor, string? actorId, string action, string? detail, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        db.VmAudit.Add(new VmAudit
        {
            VmId = vmId,
            TeamId = teamId,
            At = time.GetUtcNow().UtcDateTime,
            Actor = actor,
            ActorId = actorId,
            Action = action,
            Detail = detail is { Length: > 500 } ? detail[..500] : detail,
        });
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>For agents on a VM (<paramref name="target"/> a VM id; pool VMs are the operator's and have no owner to show them to).</summary>
    public async Task AgentAsync(string? target, string teamId, string userId, string action, string detail, CancellationToken cancellationToken)
    {
        if (target is { Length: > 0 } && !target.StartsWith(VmConnector.PoolPrefix, StringComparison.Ordinal))
        {
            await WriteAsync(target, teamId, Member, userId, action, detail, cancellationToken);
        }
    }
}
