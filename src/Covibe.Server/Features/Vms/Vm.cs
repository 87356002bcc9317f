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
    /// <summary>Seed 001's connection strategies; <c>ssh_proxy</c> today.</summary>
    public string ConnectionType { get; set; } = "ssh_proxy";
    public string Status { get; set; } = "unknown";
    public DateTime? LastSeen { get; set; }
    public string? LastError { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }

    public const string CredentialPurpose = "vm-credential";
}
