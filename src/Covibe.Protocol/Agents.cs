using System.Text.Json;

namespace Covibe.Protocol;

// Agents: REST bodies (docs/api.md) and hub messages (docs/protocol.md).

public static class AgentStatuses
{
    /// <summary>Launched; cloning the repository if one was given.</summary>
    public const string Starting = "starting";
    public const string Running = "running";
    /// <summary>A conversational agent finished a turn and waits for input (or <c>end</c>).</summary>
    public const string Waiting = "waiting";
    public const string Completed = "completed";
    public const string Failed = "failed";
    /// <summary>Stopped by its owner.</summary>
    public const string Killed = "killed";
    /// <summary>The process vanished without an exit code (e.g. the machine rebooted).</summary>
    public const string Lost = "lost";

    public static bool IsFinal(string status) => status is Completed or Failed or Killed or Lost;

    /// <summary>The final statuses, for queries.</summary>
    public static readonly string[] Final = [Completed, Failed, Killed, Lost];
}

/// <summary>
/// Seed 001's spawn body, with seed 003's fields (<c>agentType</c>, <c>repositoryUrl</c>, <c>teamId</c>).
/// <see cref="VmId"/> picks where it runs (the server itself when absent); <see cref="BoxId"/>, one of the caller's boxes (its repository is there already).
/// Once the team has a repository, an agent without <see cref="RepositoryUrl"/> or <see cref="BoxId"/> works on it, on a branch of its own
/// started from <see cref="BaseBranch"/> (the repository's base branch by default); <see cref="TeamRepository"/> false: in an empty directory.
/// </summary>
public sealed record SpawnAgentRequest(
    string? Task,
    string? AgentType = null,
    string? RepositoryUrl = null,
    string? Branch = null,
    string? TeamId = null,
    string? VmId = null,
    string? BoxId = null,
    string? BaseBranch = null,
    bool? TeamRepository = null,
    string? PermissionMode = null);

/// <summary><see cref="RunsOn"/>: the backend it runs on (<c>container</c>, <c>sandbox</c>, <c>ssh</c> or <c>runner</c> for a VM, <c>box</c>, <c>local</c>).</summary>
public sealed record AgentDto(
    string Id,
    string TeamId,
    string OwnerId,
    string OwnerName,
    string Type,
    string Task,
    string? RepositoryUrl,
    string? Branch,
    string Status,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? CompletedAt,
    int? ExitCode,
    long OutputBytes,
    double? CostUsd,
    long? InputTokens,
    long? OutputTokens,
    string? Model,
    string? Error,
    bool CanControl,
    string? RunsOn = null,
    string? WorkBranch = null,
    string? BaseCommit = null,
    bool TreeDiscarded = false,
    int PendingApprovals = 0,
    string? PermissionMode = null);

/// <summary>
/// Seed 003's spawn answer (<c>success</c>, <c>method</c>: <c>docker</c>, <c>ssh</c> or <c>local</c>) around
/// the agent; <see cref="Fallback"/> says why it does not run where the operator asked (e.g. the
/// container engine is down), absent when it does.
/// </summary>
public sealed record SpawnAgentResponse(bool Success, string Method, AgentDto Agent, string? Fallback = null);

public sealed record AgentListResponse(AgentDto[] Agents);

/// <summary>An agent type the server offers. <see cref="Conversational"/>: takes input turn by turn (stream-json).</summary>
public sealed record AgentTypeDto(string Name, string? Description, bool Conversational);

/// <summary><see cref="Data"/> is written to the agent's stdin as is; add the newline yourself if the agent reads lines.</summary>
public sealed record AgentInputRequest(string? Data);

/// <summary>
/// One parsed piece of output. <see cref="Kind"/>: <c>init</c>, <c>text</c>, <c>thinking</c>,
/// <c>tool_use</c>, <c>tool_result</c>, <c>result</c>, <c>system</c>, <c>output</c> (a line that is
/// not stream-json, e.g. git's progress) or <c>unknown</c> (stream-json of a type we do not know).
/// </summary>
public sealed record AgentEvent(
    long Position,
    string Kind,
    string? Text = null,
    string? Tool = null,
    string? ToolUseId = null,
    JsonElement? Input = null,
    bool? IsError = null,
    double? CostUsd = null,
    long? InputTokens = null,
    long? OutputTokens = null,
    string? Model = null,
    string? RequestId = null,
    JsonElement? Suggestions = null);

/// <summary>Events from <c>from</c>; continue with <see cref="Next"/>. <see cref="Complete"/>: the agent has finished and this is the end.</summary>
public sealed record AgentEventsResponse(AgentEvent[] Events, long Next, bool Complete);

// ---- hub: client -> server ----

public sealed record AgentSpawnMessage(
    string? Task,
    string? VmId = null,
    string? AgentType = null,
    string? RepositoryUrl = null,
    string? Branch = null,
    string? ClientId = null,
    string? BoxId = null,
    string? BaseBranch = null,
    bool? TeamRepository = null,
    string? PermissionMode = null) : HubMessage(HubMessageTypes.AgentSpawn);

/// <summary><see cref="Command"/>: <c>kill</c>, <c>interrupt</c>, <c>input</c> (with <see cref="Data"/>), or <c>end</c> (close its input).</summary>
public sealed record AgentControlMessage(string? AgentId, string? Command, string? Data = null) : HubMessage(HubMessageTypes.AgentControl);

/// <summary>Output of one agent from byte position <see cref="From"/> (0: from the start), then live until it ends.</summary>
public sealed record AgentSubscribeMessage(string? AgentId, long? From = null) : HubMessage(HubMessageTypes.AgentSubscribe);

public sealed record AgentUnsubscribeMessage(string? AgentId) : HubMessage(HubMessageTypes.AgentUnsubscribe);

// ---- hub: server -> client ----

/// <summary>
/// Bytes <see cref="Position"/> to <see cref="Next"/> of the agent's output. <see cref="Data"/> is
/// the text, or base64 when <see cref="Encoding"/> is <c>base64</c> (bytes that are not UTF-8).
/// </summary>
public sealed record AgentOutputMessage(
    string AgentId,
    string Owner,
    string Data,
    bool CanControl,
    long Position,
    long Next,
    string? Encoding = null) : HubMessage(HubMessageTypes.AgentOutput);

public sealed record AgentStatusMessage(string AgentId, string Status, AgentDto Agent) : HubMessage(HubMessageTypes.AgentStatus);

/// <summary>Answers <c>agent_spawn</c> to the connection that sent it.</summary>
public sealed record AgentSpawnedMessage(AgentDto Agent, string? ClientId) : HubMessage(HubMessageTypes.AgentSpawned);

/// <summary>
/// Bytes <see cref="From"/> to <see cref="To"/> of the output cannot be read from the server this connection reached (they
/// are on another machine's disk only, and no longer in memory or Redis); the subscription goes on at <see cref="To"/>.
/// </summary>
public sealed record AgentOutputGapMessage(string AgentId, long From, long To, string Reason) : HubMessage(HubMessageTypes.AgentOutputGap);

/// <summary>Sent when a subscription has delivered everything: the agent has finished.</summary>
public sealed record AgentOutputEndMessage(string AgentId, long Next, string Status) : HubMessage(HubMessageTypes.AgentOutputEnd);

/// <summary>
/// <c>GET /api/agent/costs?days=N</c>: what the team's agents spent over the last N days (UTC; an agent counts on the day
/// it was created), from Claude's <c>total_cost_usd</c> and token counts: in all, by member, by day (every day of the
/// range, spent or not) and the costliest agents.
/// </summary>
public sealed record AgentCostsResponse(
    DateOnly From,
    DateOnly To,
    double TotalUsd,
    long InputTokens,
    long OutputTokens,
    int Agents,
    MemberCost[] ByMember,
    DayCost[] ByDay,
    AgentCost[] TopAgents);

public sealed record MemberCost(string UserId, string Name, double CostUsd, long InputTokens, long OutputTokens, int Agents);

public sealed record DayCost(DateOnly Day, double CostUsd, int Agents);

public sealed record AgentCost(string Id, string OwnerId, string OwnerName, string Type, string Task, string Status, DateTime CreatedAt, double CostUsd);
