using System.Security.Cryptography;
using Covibe.Execution;
using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Vms;

/// <summary>
/// Makes a VM reachable: its key (decrypted in memory) into the server's ssh-agent, and its pinned host key. A target
/// <c>pool:&lt;id&gt;</c> is one of the operator's VMs (seed 000's <c>vm-instances.json</c>): its <c>sshKeyPath</c> key is
/// loaded into the agent (read, never copied), its host key pinned by the configured fingerprint.
/// </summary>
public sealed class VmConnector(IDbContextFactory<CovibeDb> dbs, SecretBox secrets, SshClient ssh, VmPool pool)
{
    public const string PoolPrefix = "pool:";
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _poolHostKeys = new();

    public async Task<SshTarget> ConnectAsync(string vmId, CancellationToken cancellationToken)
    {
        if (vmId.StartsWith(PoolPrefix, StringComparison.Ordinal))
        {
            return await ConnectPoolAsync(vmId, cancellationToken);
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var vm = await db.Vms.AsNoTracking().SingleOrDefaultAsync(v => v.Id == vmId, cancellationToken)
            ?? throw new SshException($"The VM '{vmId}' no longer exists.");
        var credential = secrets.Open(vm.Credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}");
        try
        {
            return await TargetAsync(new SshTarget(vm.Id, vm.Host, vm.Port, vm.Username, vm.HostKeys), vm.AuthMethod, credential, cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(credential);
        }
    }

    /// <summary>
    /// <paramref name="target"/> logging in with <paramref name="credential"/> (<paramref name="method"/> <c>key</c>: into the
    /// agent, offered alone; <c>password</c>: held in memory). Also for a VM not saved yet, to check its login first.
    /// </summary>
    public async Task<SshTarget> TargetAsync(SshTarget target, string method, byte[] credential, CancellationToken cancellationToken) =>
        method == "password"
            ? target with { Password = System.Text.Encoding.UTF8.GetString(credential) }
            : target with { PublicKey = await ssh.AddKeyAsync(credential, TimeSpan.FromHours(1), cancellationToken) };

    private async Task<SshTarget> ConnectPoolAsync(string target, CancellationToken cancellationToken)
    {
        var id = target[PoolPrefix.Length..];
        var instance = pool.Instances.FirstOrDefault(i => i.Id == id)
            ?? throw new SshException($"The pool VM '{id}' is no longer in the VM pool file.");
        if (string.IsNullOrEmpty(instance.Username) || string.IsNullOrEmpty(instance.HostKeyFingerprint))
        {
            throw new SshException($"The pool VM '{id}' needs 'username' and 'hostKeyFingerprint' in the VM pool file to be used for boxes.");
        }
        var port = instance.Port ?? 22;
        if (!_poolHostKeys.TryGetValue(id, out var known))
        {
            var wanted = instance.HostKeyFingerprint;
            var keys = await HostKeys.ScanAsync(instance.Host!, port, cancellationToken);
            var match = HostKeys.Matching(keys, wanted);
            if (match.Count == 0)
            {
                throw new SshException($"The pool VM '{id}' did not offer the host key {wanted} of the VM pool file ({(keys.Count == 0 ? "it did not answer" : "it offered " + string.Join(", ", keys.Select(k => k.Fingerprint)))}).");
            }
            known = _poolHostKeys[id] = string.Join('\n', match.Select(k => k.KnownHostsLine));
        }
        var keyPath = pool.KeyPathOf(instance) ?? throw new SshException($"The pool VM '{id}' has no sshKeyPath.");
        byte[] key;
        try
        {
            key = await File.ReadAllBytesAsync(keyPath, cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SshException($"The key of pool VM '{id}' ({keyPath}) cannot be read: {e.Message}");
        }
        try
        {
            return await TargetAsync(new SshTarget(target, instance.Host!, port, instance.Username, known), "key", key, cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }
}
