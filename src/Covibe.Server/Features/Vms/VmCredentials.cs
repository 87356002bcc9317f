using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Vms;

/// <summary>The SSH VMs' sealed credentials (a runner VM's runner has its own, stored only as a hash).</summary>
public sealed class VmCredentials(IDbContextFactory<CovibeDb> dbs) : ISealedSecrets
{
    public string What => "VM credentials";

    public async Task<IReadOnlyList<string>> EnvelopesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Vms.Where(Vm.OverSsh).Select(v => v.Credential).ToListAsync(cancellationToken);
    }

    public async Task<int> RotateAsync(Func<SealedSecret, string?> reseal, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rotated = 0;
        foreach (var vm in await db.Vms.Where(Vm.OverSsh).ToListAsync(cancellationToken))
        {
            if (reseal(new SealedSecret(vm.Credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}")) is { } resealed)
            {
                vm.Credential = resealed;
                await db.SaveChangesAsync(cancellationToken);
                rotated++;
            }
        }
        return rotated;
    }
}
