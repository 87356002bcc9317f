using System.Linq.Expressions;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Vms;

/// <summary>
/// A member's machine the server reaches over SSH (seed 001: <c>vms (id, user_id, connection_config, last_seen)</c>).
/// The credential is stored only as a <see cref="Secrets.SecretBox"/> envelope.
/// </summary>
public sealed class Vm
{
    public required string Id { get; init; }
    public required string TeamId { get; init; }
    public required string UserId { get; init; }
    public required string Name { get; set; }
    public required string Host { get; set; }
    public int Port { get; set; } = 22;
    public required string Username { get; set; }
    /// <summary><c>key</c> or <c>password</c>.</summary>
    public required string AuthMethod { get; set; }
    /// <summary>Encrypted private key or password.</summary>
    public required string Credential { get; set; }
    /// <summary>The confirmed host keys, as known_hosts lines: a changed key is refused.</summary>
    public required string HostKeys { get; set; }
    public required string HostKeyFingerprint { get; set; }
    /// <summary>Seed 001's connection strategies: <c>ssh_proxy</c> (the server logs in), <c>polling</c> or <c>tunnel</c> (its runner dials out).</summary>
    public string ConnectionType { get; set; } = SshProxy;
    public string Status { get; set; } = "unknown";
    public DateTime? LastSeen { get; set; }
    public string? LastError { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }

    /// <summary>SHA-256 of the runner's one-time registration token, until it is used or replaced.</summary>
    public string? RunnerRegistrationHash { get; set; }
    public DateTime? RunnerRegistrationExpiresAt { get; set; }
    /// <summary>SHA-256 of the runner's credential; null once revoked.</summary>
    public string? RunnerCredentialHash { get; set; }
    /// <summary>The credential being rotated away from: accepted until the new one is first used.</summary>
    public string? RunnerPreviousCredentialHash { get; set; }
    public string? RunnerHostname { get; set; }
    public string? RunnerVersion { get; set; }

    /// <summary>Its runner dials out to the server (the server never logs in).</summary>
    public bool IsRunner => DialsOut(ConnectionType);

    /// <summary>In a query: the VMs the server logs in to over SSH.</summary>
    public static readonly Expression<Func<Vm, bool>> OverSsh = v => v.ConnectionType == SshProxy;

    /// <summary>Seed 001's connection types whose runner dials out (<c>polling</c>, <c>tunnel</c>).</summary>
    public static bool DialsOut(string? connectionType) => connectionType is Polling or Tunnel;

    /// <summary>A requested connection type the server logs in with (<c>ssh_proxy</c>, the default when none is named).</summary>
    public static bool LogsIn(string? connectionType) => connectionType is null or SshProxy;

    public const string CredentialPurpose = "vm-credential";
    public const string SshProxy = "ssh_proxy";
    public const string Polling = "polling";
    public const string Tunnel = "tunnel";
}

/// <summary>
/// One line of a VM's audit log (seed 001: "audit logging all VM access"): an SSH or runner session, an agent started or
/// controlled on it, a credential made, changed or revoked. Only ever appended.
/// </summary>
public sealed class VmAudit
{
    public long Id { get; init; }
    public required string VmId { get; init; }
    public required string TeamId { get; init; }
    public DateTime At { get; init; }
    /// <summary><c>member</c>, <c>runner</c> or <c>server</c>.</summary>
    public required string Actor { get; init; }
    /// <summary>The member's id, for <c>member</c>.</summary>
    public string? ActorId { get; init; }
    public required string Action { get; init; }
    public string? Detail { get; init; }
}
