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
/// <see cref="ProposedMessage"/>: the commit message proposed for its work (its task and final summary);
/// <see cref="MergingBase"/>: the base commit an update brought in with conflicts, which the next commit merges.
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
    DateTime At,
    string? ProposedMessage = null,
    string? MergingBase = null);

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

/// <summary>
/// <c>POST /api/agent/{id}/merge</c>: the agent's branch merged into <see cref="BaseBranch"/> of the team's repository, which
/// now points to <see cref="Commit"/> (the branch's own head when <see cref="FastForward"/>, else a merge commit);
/// <see cref="PreviewQueued"/>: the preview follows that branch and is deploying it.
/// </summary>
public sealed record AgentMergeResponse(string AgentId, string WorkBranch, string BaseBranch, string Commit, bool FastForward, bool PreviewQueued);

/// <summary>
/// <c>POST /api/agent/{id}/update</c>: the base branch's newest commit (<see cref="BaseCommit"/>) brought into the agent's
/// branch and tree. Clean: <see cref="Commit"/> is the branch's new head. Else <see cref="Conflicts"/> lists the files
/// left with conflict markers in its tree, to resolve (the agent can) and commit.
/// </summary>
public sealed record AgentUpdateResponse(string AgentId, string WorkBranch, string BaseCommit, string? Commit, string[] Conflicts);

/// <summary>
/// Someone acted on an agent's branch (<see cref="Action"/> <c>commit</c>, <c>push</c>, <c>merge</c> into its base, or
/// <c>update</c> from it): the team hears who, and what it made (<see cref="Commit"/>: for a merge, the base's new head).
/// </summary>
public sealed record AgentBranchMessage(string AgentId, string Action, string By, string WorkBranch, string Commit, string? Message, string? PullRequestUrl)
    : HubMessage(HubMessageTypes.AgentBranch);
