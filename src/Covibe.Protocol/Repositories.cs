namespace Covibe.Protocol;

// The team's repository (issue 25, docs/api.md): where its agents' branches come from and go to.

/// <summary>A host key of the repository's server, pinned the first time it was reached.</summary>
public sealed record RepositoryHostKeyDto(string Type, string Fingerprint);

/// <summary>
/// The team's repository as every member sees it: never its credential, only how it logs in (<see cref="Auth"/>
/// <c>ssh-key</c>, <c>token</c> or <c>none</c>), the deploy key's public half to paste into the forge, and the host keys
/// pinned. <see cref="Url"/> is null while only a deploy key was made (<c>POST /api/team/repository/deploy-key</c>).
/// <see cref="Branch"/>: the base branch agents start from and merge into.
/// </summary>
public sealed record TeamRepositoryResponse(
    string? Url,
    string? Branch,
    string Auth,
    string? PublicKey,
    string? KeyFingerprint,
    RepositoryHostKeyDto[] HostKeys,
    string? ConnectedBy,
    DateTime? ConnectedAt);

/// <summary>
/// Connects the team's repository (owner only). An <c>ssh://</c> or <c>user@host:path</c> address logs in with
/// <see cref="PrivateKey"/> or, when none is given, the team's deploy key; an <c>https://</c> one with <see cref="Token"/>
/// (sent as the password of <see cref="Username"/>, <c>x-access-token</c> unless given), or with nothing for a public one.
/// <see cref="HostKeyFingerprint"/>: the SSH host key the owner expects (otherwise the key offered now is pinned).
/// </summary>
public sealed record ConnectRepositoryRequest(
    string? Url,
    string? Branch = null,
    string? Token = null,
    string? Username = null,
    string? PrivateKey = null,
    string? HostKeyFingerprint = null);

/// <summary>The deploy key made for the team: paste <see cref="PublicKey"/> into the forge (with write access, to push).</summary>
public sealed record DeployKeyResponse(string PublicKey, string Fingerprint);

/// <summary>
/// One file an agent changed against where its branch started: <see cref="Status"/> <c>A</c> (added), <c>M</c> (modified),
/// <c>D</c> (deleted), <c>R</c> (renamed from <see cref="OldPath"/>), <c>T</c> (its type changed); lines added and removed
/// (null for a binary file).
/// </summary>
public sealed record ChangedFileDto(string Path, string Status, int? Added, int? Removed, string? OldPath = null);

/// <summary>
/// <c>GET /api/agent/{id}/changes</c>: what an agent on the team's repository changed in its work tree against
/// <see cref="BaseCommit"/>, where <see cref="WorkBranch"/> started; <see cref="Head"/> and <see cref="Branch"/>: what its
/// tree has checked out now (it may commit or switch branches itself). <see cref="Truncated"/>: more files than listed.
/// </summary>
public sealed record AgentChangesDto(
    string AgentId,
    string? WorkBranch,
    string? BaseCommit,
    string? Head,
    string? Branch,
    ChangedFileDto[] Files,
    int Added,
    int Removed,
    bool Truncated,
    DateTime At);

/// <summary>One agent's work tree kept on this server, and the disk it takes (its files and its own <c>.git</c>).</summary>
public sealed record WorktreeDto(string AgentId, string WorkBranch, string Status, string Task, long Bytes);

/// <summary>
/// <c>GET /api/team/worktrees</c> (owner): what the team's repository takes on this server's disk: the team's mirror
/// (once for all its agents) and each kept work tree; <see cref="Max"/> trees may be kept at once.
/// </summary>
public sealed record TeamWorktreesResponse(long MirrorBytes, WorktreeDto[] Trees, long TotalBytes, int Max);

/// <summary><c>POST /api/agent/{id}/commit</c>: the message (null: one proposed from the task).</summary>
public sealed record AgentCommitRequest(string? Message = null);

/// <summary>
/// An agent's branch after a commit or a push: its <see cref="Commit"/> (the branch's head in the team's mirror);
/// <see cref="PullRequestUrl"/>, for a GitHub or GitLab repository once pushed, opens a pull request for it.
/// </summary>
public sealed record AgentBranchResponse(string AgentId, string WorkBranch, string Commit, string? Message, string? PullRequestUrl);

/// <summary>Someone committed or pushed an agent's branch (<see cref="Action"/> <c>commit</c> or <c>push</c>): the team hears who.</summary>
public sealed record AgentBranchMessage(string AgentId, string Action, string By, string WorkBranch, string Commit, string? Message, string? PullRequestUrl)
    : HubMessage(HubMessageTypes.AgentBranch);
