using Covibe.Execution;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// A team's shared preview (one per team, seed 001): the repository and branch it follows, the
/// webhook secret (sealed), the commit it should serve next, and the deploy that serves now.
/// </summary>
public sealed class Preview
{
    public required string TeamId { get; init; }
    public required string RepositoryUrl { get; set; }
    public required string Branch { get; set; }
    /// <summary>The webhook's HMAC key, sealed with <c>SecretBox</c> (purpose <see cref="PreviewSecrets.WebhookPurpose"/>).</summary>
    public required string WebhookSecret { get; set; }
    public required string CreatedBy { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }

    /// <summary>The newest commit asked for (by a push, a check of the branch, a redeploy); the deployer builds it next.</summary>
    public string? DesiredCommit { get; set; }
    public string? DesiredTrigger { get; set; }
    public DateTime? DesiredAt { get; set; }
    /// <summary>Build <see cref="DesiredCommit"/> even if it is live or failed before (an owner's redeploy).</summary>
    public bool Force { get; set; }

    public string? LiveDeployId { get; set; }
    /// <summary>When the server last looked at the branch itself (<c>git ls-remote</c>), and what went wrong if it could not.</summary>
    public DateTime? CheckedAt { get; set; }
    public string? CheckError { get; set; }
}

/// <summary>One commit built and started (see <c>PreviewDeployDto</c> for the statuses).</summary>
public sealed class PreviewDeploy
{
    public required string Id { get; init; }
    public required string TeamId { get; init; }
    public required string Commit { get; init; }
    public required string Trigger { get; init; }
    public required string Status { get; set; }
    public string? ProjectType { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public string? Error { get; set; }

    /// <summary>Where it runs (the same fields an agent keeps), and the port it serves on.</summary>
    public string? Backend { get; set; }
    public string? Target { get; set; }
    public string? RuntimeDirectory { get; set; }
    public int? Pid { get; set; }
    public long? PidStartTime { get; set; }
    public int? Port { get; set; }
    /// <summary>The path its app answers its health check on, checked all along while it is live.</summary>
    public string? HealthPath { get; set; }

    internal AgentProcess? Process =>
        Backend is not null && RuntimeDirectory is not null && Pid is { } pid ? new AgentProcess(Backend, RuntimeDirectory, pid, PidStartTime ?? 0, Target) : null;
}

/// <summary>A webhook delivery, stored before it is answered: GitHub's <c>X-GitHub-Delivery</c> is unique per delivery and repeated on redelivery.</summary>
public sealed class PreviewDelivery
{
    public required string TeamId { get; init; }
    public required string DeliveryId { get; init; }
    public required string Event { get; init; }
    public string? Ref { get; init; }
    public string? Commit { get; init; }
    public DateTime ReceivedAt { get; init; }
}

/// <summary>
/// Access to the preview's origin: a one-time <c>link</c> code (a minute) and the <c>session</c> it opens
/// (a cookie on the preview's own origin), both stored as SHA-256 hashes and tied to the member's login.
/// </summary>
public sealed class PreviewGrant
{
    public required string Id { get; init; }
    public required string Kind { get; init; }
    public required string TokenHash { get; init; }
    public required string TeamId { get; init; }
    public required string UserId { get; init; }
    public required string SessionId { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime ExpiresAt { get; init; }
    public DateTime? UsedAt { get; set; }
}

public static class PreviewStatuses
{
    public const string Idle = "idle";
    public const string Queued = "queued";
    public const string Building = "building";
    public const string Starting = "starting";
    public const string Live = "live";
    public const string Replaced = "replaced";
    public const string Failed = "failed";
    public const string Skipped = "skipped";
    public const string Cancelled = "cancelled";

    public static bool InProgress(string status) => status is Queued or Building or Starting;
}
