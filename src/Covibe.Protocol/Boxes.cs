namespace Covibe.Protocol;

// Boxes and warm pools (seed 002's CodeAgentController: allocator, pool manager, box store); docs/api.md.

/// <summary>
/// Seed 002's <c>requestBox({repoUrl, branch, requestedBy, envPayload})</c> as <c>POST /api/boxes</c>.
/// <see cref="Env"/>: the <c>.env</c> text to put in the box; or <see cref="EnvPayload"/>, the same already encrypted
/// for the team (<c>POST /api/boxes/env-payload</c>), so a client can keep it without holding the plaintext.
/// <see cref="RequestedBy"/>: free text the caller tags the box with (a ticket, a job); the box is the caller's either way.
/// </summary>
/// <see cref="VmId"/>: make it on a VM instead of in a container: one of your VMs (<c>GET /api/vm/list</c>), or <c>pool</c> for the operator's VM pool.
public sealed record BoxRequest(string? RepoUrl, string? Branch = null, string? RequestedBy = null, string? Env = null, string? EnvPayload = null, string? VmId = null);

/// <summary>
/// A box: a coding environment for one repository and branch. <see cref="Status"/>: <c>provisioning</c>,
/// <c>ready</c>, <c>failed</c>, <c>released</c>. <see cref="Step"/> while provisioning: <c>queued</c>, <c>clone</c>,
/// <c>devcontainer</c> (or <c>container</c> for the default image), <c>env</c>, then <c>ready</c>.
/// <see cref="FromPool"/>: claimed ready from a warm pool (<see cref="ClaimMs"/>: how long the claim took on the server).
/// <see cref="Backend"/>: <c>container</c> or <c>vm</c>; <see cref="Workspace"/>: where the repository is inside it.
/// </summary>
public sealed record BoxDto(
    string Id,
    string Status,
    string Step,
    string RepoUrl,
    string Branch,
    string? Commit,
    string? RequestedBy,
    BoxHolderDto? Holder,
    string? PoolId,
    bool FromPool,
    double? ClaimMs,
    string Backend,
    string? Image,
    bool Devcontainer,
    string? Workspace,
    bool HasEnv,
    string? Error,
    DateTime CreatedAt,
    DateTime? ReadyAt,
    DateTime? ClaimedAt,
    DateTime? ReleasedAt);

public sealed record BoxHolderDto(string Id, string Name);

public sealed record BoxListResponse(BoxDto[] Boxes);

/// <summary>The box's provisioning log from <c>from</c> (clone, devcontainer and env steps; never the <c>.env</c> itself).</summary>
public sealed record BoxLogResponse(string Text, long Next, bool Complete);

/// <summary><c>POST /api/boxes/env-payload</c>: a <c>.env</c> to encrypt for the team, for later <see cref="BoxRequest.EnvPayload"/>.</summary>
public sealed record BoxEnvPayloadRequest(string? Env);

public sealed record BoxEnvPayloadResponse(string EnvPayload);

/// <summary>Seed 002's pool config, one entry of <c>reconcilePools([...])</c>: keep <see cref="MinStandby"/> boxes ready, never more than <see cref="MaxInstances"/> in all.</summary>
/// <see cref="Backend"/>: <c>container</c> (the default) or <c>vm</c> (boxes on the operator's VM pool, seed 000's <c>vm-instances.json</c>).
public sealed record PoolSpec(string? RepoUrl, string? BaseBranch, int? MinStandby, int? MaxInstances, string? Backend = null);

/// <summary>
/// A warm pool and how it is doing: <see cref="Ready"/> boxes waiting, <see cref="Provisioning"/>, <see cref="Claimed"/>
/// (held by members now), <see cref="Failed"/> recently; <see cref="Claims"/> served ready and <see cref="Misses"/>
/// (requests that found none ready); claim latency on the server over the recent claims. <see cref="Source"/>:
/// <c>api</c> (the team owner's <c>PUT /api/pools</c>) or <c>config</c> (the operator's pools file).
/// <see cref="Paused"/> with <see cref="PausedReason"/>: it kept failing, and waits for a change or <see cref="ResumeAt"/>.
/// </summary>
public sealed record PoolDto(
    string Id,
    string RepoUrl,
    string BaseBranch,
    int MinStandby,
    int MaxInstances,
    string Source,
    string Backend,
    int Ready,
    int Provisioning,
    int Claimed,
    int Failed,
    long Claims,
    long Misses,
    double? ClaimP50Ms,
    double? ClaimP99Ms,
    string? HeadCommit,
    bool Paused,
    string? PausedReason,
    string? LastError,
    DateTime? ResumeAt);

public sealed record PoolListResponse(PoolDto[] Pools);

/// <summary>Sent to the team when one of its boxes changes (provisioning steps, ready, failed, released).</summary>
public sealed record BoxUpdatedMessage(BoxDto Box) : HubMessage(HubMessageTypes.BoxUpdated);
