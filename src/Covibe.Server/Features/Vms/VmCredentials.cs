using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Vms;

/// <summary>The VMs' sealed credentials as a whole: checked against this server's keys at start-up, and re-sealed with the current key.</summary>
public sealed class VmCredentials(SecretBox box, IDbContextFactory<CovibeDb> dbs)
{
    /// <summary>Refuses to start when a stored secret names a key this server does not have: it would fail later, mid-work.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        // Only SSH VMs hold a sealed credential; a runner VM's runner has its own, stored only as a hash.
        var envelopes = await db.Vms.Where(Vm.OverSsh).Select(v => v.Credential).ToListAsync(cancellationToken);
        var unknown = envelopes.Select(SecretBox.KeyIdOf).Where(id => id is null || !box.KnowsKey(id)).Distinct().ToList();
        if (unknown.Count > 0)
        {
            throw new OptionsValidationException(SecretsOptions.Section, typeof(SecretsOptions),
                [$"Stored secrets were encrypted with key(s) {string.Join(", ", unknown.Select(u => u ?? "(none)"))} that this server does not have. " +
                 "Set ENCRYPTION_KEY to the key they were made with, or list it in ENCRYPTION_KEYS_PREVIOUS and run `covibe secrets rotate`."]);
        }
    }

    /// <summary>Re-encrypts every stored secret with the current key, row by row; old keys keep working until it is done.</summary>
    public async Task<int> RotateAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rotated = 0;
        foreach (var vm in await db.Vms.Where(Vm.OverSsh).ToListAsync(cancellationToken))
        {
            if (SecretBox.KeyIdOf(vm.Credential) == box.CurrentKeyId)
            {
                continue;
            }
            var purpose = $"{Vm.CredentialPurpose}:{vm.Id}";
            var plaintext = box.Open(vm.Credential, vm.UserId, purpose);
            try
            {
                vm.Credential = box.Seal(plaintext, vm.UserId, purpose);
            }
            finally
            {
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
            }
            await db.SaveChangesAsync(cancellationToken);
            rotated++;
        }
        return rotated;
    }
}
