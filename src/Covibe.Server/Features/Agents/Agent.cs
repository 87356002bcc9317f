using Covibe.Execution;

namespace Covibe.Server.Features.Agents;

/// <summary>Seed 001: <c>agents (id, user_id, task, status, started_at, completed_at)</c>, and what it takes to find the process again.</summary>
public sealed class Agent
{
    public required string Id { get; init; }
    public required string TeamId { get; init; }
    public required string UserId { get; init; }
    public required string Type { get; init; }
    public required string Task { get; init; }
    public string? RepositoryUrl { get; init; }
    /// <summary>The branch cloned; for an agent on the team's repository, the base branch its own branch starts from.</summary>
    public string? Branch { get; init; }
    /// <summary>On the team's repository: its own branch (<c>covibe/&lt;id&gt;-&lt;task&gt;</c>) and the commit it started from.</summary>
    public string? WorkBranch { get; init; }
    public string? BaseCommit { get; init; }
    /// <summary>When its owner discarded its work tree and branch (they stay until merged or discarded).</summary>
    public DateTime? TreeDiscardedAt { get; set; }
    /// <summary>
    /// The base commit brought into its tree by an "update from base" that left conflicts to resolve: the next commit of its
    /// work has it as a second parent (a merge commit), so that merging into the base afterwards does not conflict again.
    /// </summary>
    public string? MergeParent { get; set; }
    public required string Status { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime? StartedAt { get; set; }
    public DateTime? CompletedAt { get; set; }
    public int? ExitCode { get; set; }
    public string? Error { get; set; }

    /// <summary>Where it runs (a backend's name): set when it is placed, and again only if that place did not answer its start.</summary>
    public required string Backend { get; set; }
    /// <summary>The machine it runs on within its backend: a VM id (<c>ssh</c>), a container name (<c>container</c>); null on this server.</summary>
    public string? Target { get; set; }
    public required string WorkingDirectory { get; set; }
    /// <summary>The box it runs in, if any (its repository is there; releasing the box stops the agent).</summary>
    public string? BoxId { get; init; }
    public string? RuntimeDirectory { get; set; }
    public int? Pid { get; set; }
    public long? PidStartTime { get; set; }
    public bool KillRequested { get; set; }

    public long OutputBytes { get; set; }
    public double? CostUsd { get; set; }
    public long? InputTokens { get; set; }
    public long? OutputTokens { get; set; }
    public string? Model { get; set; }
    /// <summary>What the agent said last (a Claude agent's final <c>result</c>): the body of the commit message proposed for its work.</summary>
    public string? Summary { get; set; }

    /// <summary>What it may do without asking (<see cref="Protocol.PermissionModes"/>); null for the server's default.</summary>
    public string? PermissionMode { get; set; }
    /// <summary>Rules its controllers allowed always (one per line, e.g. <c>Bash(npm test)</c>).</summary>
    public string? AllowedRules { get; set; }
    /// <summary>Its permission prompts waiting for an answer (the team's list shows "waiting for approval").</summary>
    public int PendingApprovals { get; set; }

    internal AgentProcess? Process =>
        RuntimeDirectory is not null && Pid is { } pid ? new AgentProcess(Backend, RuntimeDirectory, pid, PidStartTime ?? 0, Target) : null;
}
