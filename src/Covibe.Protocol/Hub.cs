using System.Text.Json.Serialization;

namespace Covibe.Protocol;

/// <summary>
/// Messages on the one WebSocket endpoint, <c>/ws</c>. Each is a JSON text frame whose
/// <c>type</c> is the seed's event name. See docs/protocol.md.
/// </summary>
public static class HubMessageTypes
{
    // client -> server
    public const string JoinTeam = "join_team";
    public const string PresenceUpdate = "presence_update";
    public const string AgentSpawn = "agent_spawn";
    public const string AgentControl = "agent_control";
    public const string AgentSubscribe = "agent_subscribe";
    public const string AgentUnsubscribe = "agent_unsubscribe";
    // both ways
    public const string ChatMessage = "chat_message";
    // server -> client
    public const string TeamJoined = "team_joined";
    public const string TeamPresence = "team_presence";
    public const string Error = "error";
    public const string AgentOutput = "agent_output";
    public const string AgentStatus = "agent_status";
    public const string AgentSpawned = "agent_spawned";
    public const string AgentOutputEnd = "agent_output_end";
    public const string AgentOutputGap = "agent_output_gap";
    public const string PreviewUpdated = "preview_updated";
    public const string PreviewStatus = "preview_status";
    public const string BoxUpdated = "box_updated";
    public const string VmUpdated = "vm_updated";
    public const string TeamLimit = "team_limit";
    public const string EgressBlocked = "egress_blocked";
    public const string EgressPolicy = "egress_policy";
    public const string AgentChanges = "agent_changes";
    public const string AgentBranch = "agent_branch";
    public const string AgentPermissionRequest = "agent_permission_request";
    public const string AgentPermissionAnswered = "agent_permission_answered";
    public const string AgentAction = "agent_action";
    public const string AgentActions = "agent_actions";
    public const string AgentControlRequested = "agent_control_requested";
    public const string BudgetReached = "budget_reached";
    // Socket.IO only: the acknowledgement of a request that has no other reply
    public const string Ok = "ok";
}

/// <summary>Every message carries its <c>type</c> first.</summary>
public abstract record HubMessage([property: JsonPropertyName("type"), JsonPropertyOrder(-100)] string Type);

// ---- client -> server ----

/// <summary><see cref="FollowAgents"/> (default true, as in seed 001): receive every team agent's live output.</summary>
public sealed record JoinTeamMessage(string? TeamId, string? Token, bool? FollowAgents = null) : HubMessage(HubMessageTypes.JoinTeam);

/// <summary><see cref="ClientId"/> is echoed back on the broadcast so a sender can match its own message.</summary>
public sealed record SendChatMessage(string? Message, string? ClientId = null) : HubMessage(HubMessageTypes.ChatMessage);

public sealed record PresenceUpdateMessage(string? Status) : HubMessage(HubMessageTypes.PresenceUpdate);

// ---- server -> client ----

/// <summary>
/// Socket.IO only: what a client's acknowledgement callback gets for a request that has no reply of its own (a chat
/// message, a presence update, an agent control); requests with one (<c>join_team</c>, <c>agent_spawn</c>) get it, and
/// a refused request its <c>error</c>.
/// </summary>
public sealed record OkMessage(string RequestType) : HubMessage(HubMessageTypes.Ok);

public sealed record TeamJoinedMessage(string TeamId, string UserId, string UserName) : HubMessage(HubMessageTypes.TeamJoined);

public sealed record ChatMessageEvent(long Id, string UserId, string UserName, string Message, DateTime Timestamp, string? ClientId = null, string? Kind = null) : HubMessage(HubMessageTypes.ChatMessage);

/// <summary>
/// The team's limits on this machine stopped something of its sandboxed programs (agents, terminals, previews):
/// <see cref="Limit"/> is <c>memory</c> (processes killed, <see cref="Count"/> since the last notice) or <c>processes</c>
/// (new processes refused). <see cref="Message"/> says it in words, with the limit.
/// </summary>
public sealed record TeamLimitMessage(string Limit, long Count, string Message) : HubMessage(HubMessageTypes.TeamLimit);

/// <summary>A connection of the team's code was refused by its egress policy (<see cref="Block"/> says where to, and how often).</summary>
public sealed record EgressBlockedMessage(EgressBlockDto Block) : HubMessage(HubMessageTypes.EgressBlocked);

/// <summary>The team's egress policy changed (by <see cref="By"/>): what is now in force.</summary>
public sealed record EgressPolicyMessage(EgressPolicyResponse Policy, string By) : HubMessage(HubMessageTypes.EgressPolicy);

/// <summary>What an agent on the team's repository has changed, each time it changes (issue 25): every member hears it.</summary>
public sealed record AgentChangesMessage(string AgentId, ChangedFileDto[] Files, int Added, int Removed, string? Head, string? Branch, bool Truncated)
    : HubMessage(HubMessageTypes.AgentChanges);

/// <summary>Status is <c>online</c>, <c>away</c> or <c>offline</c>; <see cref="Connections"/> counts the member's open tabs and devices.</summary>
public sealed record PresenceEntry(string UserId, string Name, string Status, int Connections, DateTime? LastSeen);

public sealed record TeamPresenceMessage(PresenceEntry[] Users) : HubMessage(HubMessageTypes.TeamPresence);

/// <summary>An error never closes the connection unless <see cref="Fatal"/> says so. <see cref="Code"/> values are listed in <see cref="HubErrorCodes"/>.</summary>
public sealed record ErrorMessage(string Code, string Error, string? RequestType = null, bool Fatal = false) : HubMessage(HubMessageTypes.Error);

public static class HubErrorCodes
{
    public const string BadJson = "bad_json";
    public const string UnknownType = "unknown_type";
    public const string InvalidMessage = "invalid_message";
    public const string MessageTooLarge = "message_too_large";
    public const string NotJoined = "not_joined";
    public const string AuthFailed = "auth_failed";
    public const string Forbidden = "forbidden";
    public const string RateLimited = "rate_limited";
    public const string JoinTimeout = "join_timeout";
    public const string SessionRevoked = "session_revoked";
    public const string BinaryNotSupported = "binary_not_supported";
    public const string NotFound = "not_found";
    public const string AgentNotRunning = "agent_not_running";
    public const string AgentUnavailable = "agent_unavailable";
    /// <summary>Several nodes: the node following the agent did not answer a control command (it is being taken over); try again.</summary>
    public const string AgentUnreachable = "agent_unreachable";
    /// <summary>The member already has <c>Covibe:Hub:MaxConnectionsPerMember</c> connections joined; this one is closed.</summary>
    public const string TooManyConnections = "too_many_connections";
    /// <summary>The container engine does not answer: nowhere to run the agent, or its command could not reach it. Try again once <c>/health</c> shows the engine back.</summary>
    public const string ContainerEngineUnavailable = "container_engine_unavailable";
    public const string EgressNotEnforced = "egress_not_enforced";
    /// <summary>The team's repository did not answer when a new agent's branch was to start from it: nothing started.</summary>
    public const string RepositoryUnreachable = "repository_unreachable";
    /// <summary>A budget the new agent would count against is spent (the message says which, and until when).</summary>
    public const string BudgetSpent = "budget_spent";
}

public static class PresenceStatuses
{
    public const string Online = "online";
    public const string Away = "away";
    public const string Offline = "offline";
}
