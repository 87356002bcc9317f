namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Seed 002's box store, one row per box: a coding environment for a repository and branch, made by the
/// provisioner (for a member, or ahead of time for a warm pool) and held by one member until released.
/// <see cref="Status"/> and <see cref="Step"/>: see <c>BoxDto</c>. The node that makes it holds its lease
/// (<c>box:&lt;id&gt;</c> in <see cref="Cluster.Leases"/>) while it works; a box whose lease ran out is picked up again.
/// </summary>
public sealed class Box
{
    public required string Id { get; init; }
    public required string TeamId { get; init; }
    public string? PoolId { get; set; }
    public required string RepoUrl { get; init; }
    public required string Branch { get; init; }
    public string? Commit { get; set; }
    public string? RequestedBy { get; set; }
    /// <summary>The member who holds it; null while it waits in a pool.</summary>
    public string? HolderId { get; set; }
    public required string Status { get; set; }
    public required string Step { get; set; }
    /// <summary>Where it runs: <c>container</c> (the Engine API) or <c>vm</c>.</summary>
    public required string Backend { get; init; }
    /// <summary>The container's name in the engine (or the VM's id).</summary>
    public string? Target { get; set; }
    public string? Image { get; set; }
    public bool Devcontainer { get; set; }
    /// <summary>The user agents and terminals run as inside, and where the repository is there.</summary>
    public string? RunAs { get; set; }
    public string? Workspace { get; set; }
    /// <summary>The <c>.env</c>, sealed with <c>SecretBox</c> for this team and box (purpose <see cref="BoxSecrets.EnvPurpose"/>).</summary>
    public string? Env { get; set; }
    public string? Error { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime? ReadyAt { get; set; }
    public DateTime? ClaimedAt { get; set; }
    public double? ClaimMs { get; set; }
    public DateTime? ReleasedAt { get; set; }
    /// <summary>When its container and files were removed (after release or failure).</summary>
    public DateTime? CleanedAt { get; set; }
    public int Attempts { get; set; }
}

/// <summary>Seed 002's pool config (<c>{repoUrl, baseBranch, minStandby, maxInstances}</c>) for a team, and how it fares.</summary>
public sealed class BoxPool
{
    public required string Id { get; init; }
    public required string TeamId { get; init; }
    public required string RepoUrl { get; init; }
    public required string BaseBranch { get; init; }
    public int MinStandby { get; set; }
    public int MaxInstances { get; set; }
    /// <summary><c>api</c> (the team owner's) or <c>config</c> (the operator's pools file).</summary>
    public required string Source { get; set; }
    /// <summary>Where its boxes are made: <c>container</c>, or <c>vm</c> (the operator's VM pool).</summary>
    public string Backend { get; set; } = "container";
    public string? HeadCommit { get; set; }
    public DateTime? HeadCheckedAt { get; set; }
    public long Misses { get; set; }
    /// <summary>Failures in a row: each one backs the pool off longer; enough of them pause it.</summary>
    public int Failures { get; set; }
    public string? LastError { get; set; }
    public DateTime? ResumeAt { get; set; }
    public string? PausedReason { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
}

public static class BoxStatuses
{
    public const string Provisioning = "provisioning";
    public const string Ready = "ready";
    public const string Failed = "failed";
    public const string Released = "released";
}

public static class BoxSteps
{
    public const string Queued = "queued";
    public const string Clone = "clone";
    public const string Container = "container";
    public const string Devcontainer = "devcontainer";
    public const string Env = "env";
    public const string Ready = "ready";
    public const string Failed = "failed";
    public const string Released = "released";
}

public static class BoxSecrets
{
    /// <summary>A box's <c>.env</c>, bound to the team and the box.</summary>
    public const string EnvPurpose = "box-env";
    /// <summary>A team's <c>envPayload</c>, made before there is a box (seed 002's encrypted payload).</summary>
    public const string PayloadPurpose = "box-env-payload";

    public static string EnvOwner(string teamId, string boxId) => $"{teamId}/{boxId}";
}
