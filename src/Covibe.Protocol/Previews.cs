namespace Covibe.Protocol;

// The team's shared preview (seed 001's Shared Preview System, seed 003's preview containers); docs/api.md.

/// <summary><c>PUT /api/preview</c>: the team owner connects the team's repository. <see cref="Branch"/> defaults to <c>main</c>.</summary>
public sealed record SetPreviewRequest(string? RepositoryUrl, string? Branch = null);

/// <summary>
/// The answer to connecting the repository or rotating its webhook secret: paste <see cref="WebhookUrl"/> and
/// <see cref="WebhookSecret"/> into the repository's webhook settings (content type <c>application/json</c>).
/// The secret is shown this once.
/// </summary>
public sealed record PreviewConnectedResponse(string WebhookUrl, string WebhookSecret, PreviewDto Preview);

/// <summary>
/// One deploy: a commit built and started. <see cref="Status"/>: <c>queued</c>, <c>building</c>, <c>starting</c>,
/// <c>live</c>, <c>replaced</c> (a newer one went live), <c>failed</c>, <c>skipped</c> (a newer commit came first),
/// <c>cancelled</c>. <see cref="Trigger"/>: <c>connect</c>, <c>push</c>, <c>check</c> (the server's own look at
/// the branch), <c>redeploy</c>. <see cref="LogBytes"/>: the length of its log so far (read it by position).
/// </summary>
public sealed record PreviewDeployDto(
    string Id,
    string Commit,
    string Status,
    string Trigger,
    string? ProjectType,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    string? Error,
    long LogBytes);

/// <summary>
/// The team's preview (<c>GET /api/preview</c>). <see cref="Status"/>: <c>queued</c>, <c>building</c>,
/// <c>starting</c> while a deploy runs; else <c>live</c>, <c>failed</c> (nothing live and the last deploy failed)
/// or <c>idle</c>. <see cref="Url"/>, <see cref="Commit"/>, <see cref="DeployedAt"/>: the version serving now.
/// <see cref="Error"/>: why the latest deploy failed, while an older version stays live. <see cref="Current"/>:
/// the deploy in progress; <see cref="Latest"/>: the most recent one.
/// </summary>
public sealed record PreviewDto(
    string RepositoryUrl,
    string Branch,
    string WebhookUrl,
    string Status,
    string? Url,
    string? Commit,
    DateTime? DeployedAt,
    string? Error,
    PreviewDeployDto? Current,
    PreviewDeployDto? Latest,
    DateTime? CheckedAt,
    string? CheckError);

public sealed record PreviewDeployListResponse(PreviewDeployDto[] Deploys);

/// <summary>A one-time link that opens the preview (valid about a minute) and signs this browser in to it.</summary>
public sealed record PreviewLinkResponse(string Url, DateTime ExpiresAt);

/// <summary>Seed 001's <c>preview_updated</c>: a new version answers its health check and serves now.</summary>
public sealed record PreviewUpdatedMessage(string Url, string Commit) : HubMessage(HubMessageTypes.PreviewUpdated);

/// <summary>Every change of the preview's state (queued, building, starting, live, failed), to the whole team.</summary>
public sealed record PreviewStatusMessage(PreviewDto Preview) : HubMessage(HubMessageTypes.PreviewStatus);

/// <summary>The answer to a webhook delivery: <see cref="Result"/> <c>queued</c> (then <see cref="DeployId"/>), <c>duplicate</c>, <c>ignored</c> or <c>pong</c>, and why.</summary>
public sealed record WebhookResponse(string Result, string Message, string? DeployId = null);
