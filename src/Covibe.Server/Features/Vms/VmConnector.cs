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
        var credential = secrets.Open(vm.Credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}");
        try
        {
            var target = new SshTarget(vm.Id, vm.Host, vm.Port, vm.Username, vm.HostKeys);
            if (vm.AuthMethod == "password")
            {
                return target with { Password = System.Text.Encoding.UTF8.GetString(credential) };
            }
            await ssh.AddKeyAsync(credential, TimeSpan.FromHours(1), cancellationToken);
            return target;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(credential);
        }
    }
}
