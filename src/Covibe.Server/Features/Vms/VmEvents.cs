using Covibe.Protocol;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Vms;

/// <summary>What the team hears of its VMs on the hub: <c>vm_updated</c> when one comes online, goes offline, is revoked or registered.</summary>
public sealed class VmEvents(IDbContextFactory<CovibeDb> dbs, ITeamEvents events)
{
    public async Task UpdatedAsync(string vmId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var row = await (from vm in db.Vms
                         join u in db.Users on vm.UserId equals u.Id
                         where vm.Id == vmId
                         select new { vm, u.Name }).AsNoTracking().SingleOrDefaultAsync(cancellationToken);
        if (row is not null)
        {
            events.Publish(row.vm.TeamId, [row.vm.UserId], isOwner => new VmUpdatedMessage(row.vm.ToDto(row.Name, isOwner)));
        }
    }
}
