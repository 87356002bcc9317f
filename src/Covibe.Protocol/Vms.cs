namespace Covibe.Protocol;

// VMs (seed 001's "Register user's VM" / "Update VM connection info"). Credentials go in, never out.

/// <summary>
/// Exactly one of <see cref="PrivateKey"/> (OpenSSH PEM text) and <see cref="Password"/>.
/// <see cref="HostKeyFingerprint"/>: the VM's host key fingerprint the owner confirms
/// (<c>SHA256:...</c>); without it the server answers 409 with the fingerprints it sees.
/// </summary>
public sealed record RegisterVmRequest(
    string? Name,
    string? Host,
    int? Port,
    string? Username,
    string? PrivateKey = null,
    string? Password = null,
    string? HostKeyFingerprint = null,
    string? ConnectionType = null);

/// <summary>Changes to one of your VMs; fields left out stay as they are. A new host or port needs the host key confirmed again.</summary>
public sealed record UpdateVmRequest(
    string? Id,
    string? Name = null,
    string? Host = null,
    int? Port = null,
    string? Username = null,
    string? PrivateKey = null,
    string? Password = null,
    string? HostKeyFingerprint = null);

/// <summary>
/// A VM as a member sees it: teammates see that it exists, whose it is and its status; only the
/// owner sees where it is. Nobody ever gets its credential back. A runner VM (<see cref="ConnectionType"/>
/// <c>polling</c> or <c>tunnel</c>) has no host or key: registering it answers, once, the one-time
/// <see cref="RegistrationToken"/> and the <see cref="RunnerCommand"/> to run on the VM; <see cref="LastPoll"/> is
/// when its runner was last heard from.
/// </summary>
public sealed record VmDto(
    string Id,
    string OwnerId,
    string OwnerName,
    string Name,
    string ConnectionType,
    string Status,
    DateTime? LastSeen,
    bool IsOwner,
    string? Host = null,
    int? Port = null,
    string? Username = null,
    string? AuthMethod = null,
    string? HostKeyFingerprint = null,
    string? LastError = null,
    int AgentsRunning = 0,
    string? RegistrationToken = null,
    DateTime? RegistrationExpiresAt = null,
    string? RunnerCommand = null,
    DateTime? LastPoll = null,
    string? RunnerHostname = null);

/// <summary>A VM of the operator's pool (seed 000's <c>vm-instances.json</c>), as members see it: no key paths.</summary>
public sealed record PoolVmDto(string Id, string Host, string? Region, string? InstanceType, string Status, int MaxUsers, int CurrentUsers);

/// <summary>Seed 000's <c>assignVMToUser</c>: the pool VM this member works on.</summary>
public sealed record VmAssignmentDto(PoolVmDto Instance, DateTime AssignedAt);

/// <summary>A VM of the team changed (online, offline, revoked, registered): to its owner with where it is, to teammates without.</summary>
public sealed record VmUpdatedMessage(VmDto Vm) : HubMessage(HubMessageTypes.VmUpdated);
