using System.Security.Cryptography;
using Covibe.Execution;
using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Vms;

/// <summary>Makes a VM reachable: its key (decrypted in memory) into the server's ssh-agent, and its pinned host key.</summary>
public sealed class VmConnector(IDbContextFactory<CovibeDb> dbs, SecretBox secrets, SshClient ssh)
{
    public async Task<SshTarget> ConnectAsync(string vmId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var vm = await db.Vms.AsNoTracking().SingleOrDefaultAsync(v => v.Id == vmId, cancellationToken)
            ?? throw new SshException($"The VM '{vmId}' no longer exists.");
        if (vm.AuthMethod != "key")
        {
            throw new SshException("Password VMs are stored, but the server connects with keys only for now: register a private key (covibe vm update --key-file).");
        }
        var key = secrets.Open(vm.Credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}");
        try
        {
            await ssh.AddKeyAsync(key, TimeSpan.FromHours(1), cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
        return new SshTarget(vm.Id, vm.Host, vm.Port, vm.Username, vm.HostKeys);
    }
}
