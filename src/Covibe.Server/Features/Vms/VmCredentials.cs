using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Vms;

/// <summary>The SSH VMs' sealed credentials (a runner VM's runner has its own, stored only as a hash).</summary>
public sealed class VmCredentials(IDbContextFactory<CovibeDb> dbs) : SealedRows<Vm>(dbs)
{
    public override string What => "VM credentials";

    protected override IQueryable<Vm> Rows(CovibeDb db) => db.Vms.Where(Vm.OverSsh);

    protected override IEnumerable<(SealedSecret, Action<string>)> Secrets(Vm vm) =>
        [(new SealedSecret(vm.Credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}"), resealed => vm.Credential = resealed)];
}
