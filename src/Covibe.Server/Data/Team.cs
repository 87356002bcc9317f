namespace Covibe.Server.Data;

public sealed class Team
{
    public required string Id { get; init; }
    public required string Name { get; set; }
    public required string OwnerId { get; set; }
    public DateTime CreatedAt { get; init; }
    /// <summary>Seed 003's team-specific feature flag: containers on or off for this team; null follows the server's setting.</summary>
    public bool? UseContainers { get; set; }
    /// <summary>The owner's choice of egress policy (<c>open</c>, <c>allowlist</c>, <c>none</c>); null follows the operator's default.</summary>
    public string? EgressMode { get; set; }
    /// <summary>The team's allowlist, one host name or CIDR a line; null: the operator's default list.</summary>
    public string? EgressAllow { get; set; }
    /// <summary>The team's number at this server's egress proxy (its sandboxes' source address), given the first time it needs one.</summary>
    public int? EgressSlot { get; set; }
    /// <summary>The permission mode of the team's new agents (issue 26); null follows the operator's default.</summary>
    public string? AgentPermissionMode { get; set; }
    /// <summary>Whether the team's owner may take over a member's agent (when they are away or have left).</summary>
    public bool OwnerTakesOver { get; set; } = true;
}

/// <summary>A member of one team (seed 001: <c>users (id, team_id, email, name, created_at)</c>).</summary>
public sealed class User
{
    public required string Id { get; init; }
    public required string TeamId { get; init; }
    /// <summary>Lower-cased; unique within the team.</summary>
    public required string Email { get; init; }
    public required string Name { get; set; }
    public required string PasswordHash { get; set; }
    public DateTime CreatedAt { get; init; }
    /// <summary>Set when the owner removes the member; their tokens stop working at once.</summary>
    public DateTime? RemovedAt { get; set; }
}

public sealed class Invite
{
    public required string Id { get; init; }
    public required string TeamId { get; init; }
    /// <summary>SHA-256 of the code: the code itself is shown once and never stored.</summary>
    public required string CodeHash { get; init; }
    public required string CreatedBy { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime ExpiresAt { get; init; }
    public int? MaxUses { get; init; }
    public int Uses { get; set; }
    public DateTime? RevokedAt { get; set; }
}
