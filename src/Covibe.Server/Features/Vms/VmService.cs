using System.Security.Cryptography;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Secrets;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Vms;

/// <summary>
/// Members' own VMs (seed 001's <c>vm_connections</c>): registered (an SSH VM only after its host key was confirmed and a
/// login worked; a runner VM through <see cref="IRunnerVms"/>), changed, removed. Refusals are
/// <see cref="RequestRefusedException"/>s; nothing is kept until every check passed.
/// </summary>
public sealed class VmService(
    IDbContextFactory<CovibeDb> dbs,
    SecretBox secrets,
    VmConnector connector,
    SshClient ssh,
    VmAuditLog audit,
    IRunnerVms runners,
    TimeProvider time)
{
    /// <summary>Adds a VM for <paramref name="caller"/>. A runner VM's answer carries its one-time registration token (for a runner dialing <paramref name="serverOrigin"/>).</summary>
    public async Task<VmDto> RegisterAsync(RegisterVmRequest request, Caller caller, string serverOrigin, CancellationToken cancellationToken)
    {
        if (Vm.DialsOut(request.ConnectionType))
        {
            return await runners.RegisterAsync(request, caller, serverOrigin, cancellationToken);
        }
        var v = new Validator();
        var name = v.Text("name", request.Name, 80);
        var host = VmFields.Host(v, request.Host);
        var port = VmFields.Port(v, request.Port);
        var username = VmFields.User(v, request.Username);
        var (method, credential) = VmFields.Credential(v, request.PrivateKey, request.Password, required: true);
        if (!Vm.LogsIn(request.ConnectionType))
        {
            v.Fail("connectionType", "'connectionType' must be 'ssh_proxy' (the server logs in over SSH), or 'polling' or 'tunnel' (the VM runs `covibe runner`, which dials out to the server).");
        }
        if (!v.IsValid)
        {
            throw RequestRefusedException.Invalid(v);
        }
        var id = Hosting.Tokens.NewId();
        string knownHosts, fingerprint;
        try
        {
            (var keys, fingerprint) = await SshVmChecks.ConfirmHostKeyAsync(host, port, request.HostKeyFingerprint, cancellationToken);
            knownHosts = string.Join('\n', keys.Select(k => k.KnownHostsLine));
            // A wrong key or password is the owner's to fix now, not a status that turns offline a minute later.
            await SshVmChecks.CheckLoginAsync(connector, ssh, new SshTarget(id, host, port, username, knownHosts), method!, credential!, cancellationToken);
        }
        catch
        {
            CryptographicOperations.ZeroMemory(credential!);
            throw;
        }
        var now = time.GetUtcNow().UtcDateTime;
        var vm = new Vm
        {
            Id = id,
            TeamId = caller.TeamId,
            UserId = caller.UserId,
            Name = name,
            Host = host,
            Port = port,
            Username = username,
            AuthMethod = method!,
            Credential = "",
            HostKeys = knownHosts,
            HostKeyFingerprint = fingerprint,
            Status = VmHealth.Online,
            LastSeen = now,
            CreatedAt = now,
            UpdatedAt = now,
        };
        vm.Credential = VmFields.Seal(secrets, vm, credential!);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        db.Vms.Add(vm);
        await db.SaveChangesAsync(cancellationToken);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "vm.register", $"ssh {vm.Username}@{vm.Host}:{vm.Port}, {vm.AuthMethod}, host key {vm.HostKeyFingerprint}; login checked", cancellationToken);
        return vm.ToDto(caller.Name, isOwner: true);
    }

    /// <summary>Changes one of the caller's VMs; a new host, port, user or credential is checked (host key, login) before it is kept.</summary>
    public async Task<VmDto> UpdateAsync(UpdateVmRequest request, Caller caller, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var vm = await FindOwnedAsync(db, caller, request.Id, "change it", cancellationToken);
        var v = new Validator();
        var name = request.Name is null ? vm.Name : v.Text("name", request.Name, 80);
        if (vm.IsRunner && (request.Host ?? request.Username ?? request.PrivateKey ?? request.Password ?? request.HostKeyFingerprint) is not null || vm.IsRunner && request.Port is not null)
        {
            v.Fail("id", "A runner VM has only a name to change: its runner dials out, with its own credential (rotate or revoke it instead).");
        }
        var host = request.Host is null ? vm.Host : VmFields.Host(v, request.Host);
        var port = request.Port is null ? vm.Port : VmFields.Port(v, request.Port);
        var username = request.Username is null ? vm.Username : VmFields.User(v, request.Username);
        var (method, credential) = VmFields.Credential(v, request.PrivateKey, request.Password, required: false);
        if (!v.IsValid)
        {
            throw RequestRefusedException.Invalid(v);
        }
        var (hostKeys, hostKeyFingerprint) = (vm.HostKeys, vm.HostKeyFingerprint);
        var now = time.GetUtcNow().UtcDateTime;
        try
        {
            if (host != vm.Host || port != vm.Port || request.HostKeyFingerprint is not null)
            {
                var (keys, fingerprint) = await SshVmChecks.ConfirmHostKeyAsync(host, port, request.HostKeyFingerprint, cancellationToken);
                (hostKeys, hostKeyFingerprint) = (string.Join('\n', keys.Select(k => k.KnownHostsLine)), fingerprint);
            }
            if (credential is not null || host != vm.Host || port != vm.Port || username != vm.Username)
            {
                // Where or how it logs in changed: check the login before keeping it.
                var login = credential ?? secrets.Open(vm.Credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}");
                try
                {
                    await SshVmChecks.CheckLoginAsync(connector, ssh, new SshTarget(vm.Id, host, port, username, hostKeys), method ?? vm.AuthMethod, login, cancellationToken);
                }
                finally
                {
                    if (credential is null)
                    {
                        CryptographicOperations.ZeroMemory(login);
                    }
                }
                (vm.Status, vm.LastSeen, vm.LastError) = (VmHealth.Online, now, null);
            }
        }
        catch when (credential is not null)
        {
            CryptographicOperations.ZeroMemory(credential);
            throw;
        }
        (vm.HostKeys, vm.HostKeyFingerprint) = (hostKeys, hostKeyFingerprint);
        (vm.Name, vm.Host, vm.Port, vm.Username) = (name, host, port, username);
        if (credential is not null)
        {
            vm.AuthMethod = method!;
            vm.Credential = VmFields.Seal(secrets, vm, credential);
        }
        vm.UpdatedAt = now;
        await db.SaveChangesAsync(cancellationToken);
        var changed = string.Join(", ", new[]
        {
            request.Name is not null ? "name" : null, request.Host is not null ? "host" : null, request.Port is not null ? "port" : null,
            request.Username is not null ? "user" : null, credential is not null ? $"credential ({method})" : null, request.HostKeyFingerprint is not null ? $"host key {vm.HostKeyFingerprint}" : null,
        }.OfType<string>());
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "vm.update", changed.Length > 0 ? changed : "nothing", cancellationToken);
        return vm.ToDto(caller.Name, isOwner: true);
    }

    /// <summary>Removes one of the caller's VMs; its runner, if it has one, loses its connection now.</summary>
    public async Task RemoveAsync(string id, Caller caller, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var vm = await FindOwnedAsync(db, caller, id, "remove it", cancellationToken);
        db.Vms.Remove(vm);
        await db.SaveChangesAsync(cancellationToken);
        runners.Removed(vm.Id);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "vm.remove", null, cancellationToken);
    }

    /// <summary>Whether <paramref name="userId"/>'s VM <paramref name="vmId"/> is one the server logs in to over SSH; null when they have no such VM.</summary>
    public async Task<bool?> OverSshAsync(string userId, string vmId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var type = await db.Vms.Where(v => v.Id == vmId && v.UserId == userId).Select(v => v.ConnectionType).SingleOrDefaultAsync(cancellationToken);
        return type is null ? null : !Vm.DialsOut(type);
    }

    /// <summary>A VM of the caller's team that the caller owns; refused with 404, or 403 for a teammate's.</summary>
    internal static async Task<Vm> FindOwnedAsync(CovibeDb db, Caller caller, string? id, string action, CancellationToken cancellationToken)
    {
        var vm = await db.Vms.SingleOrDefaultAsync(x => x.Id == id && x.TeamId == caller.TeamId, cancellationToken);
        return vm is null ? throw RequestRefusedException.NotFound("VM", $"Your team has no VM '{id}'. List them with GET /api/vm/list.")
            : vm.UserId != caller.UserId ? throw RequestRefusedException.Forbidden($"Only the VM's owner can {action}.")
            : vm;
    }
}
