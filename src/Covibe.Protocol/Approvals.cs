using System.Text.Json;

namespace Covibe.Protocol;

// Approvals (issue 26): an agent's permission prompts, answered by the team. REST bodies (docs/api.md) and hub messages
// (docs/protocol.md).

public static class PermissionModes
{
    /// <summary>Every tool call Claude would ask about waits for an answer from whoever controls the agent (the default).</summary>
    public const string Ask = "ask";
    /// <summary>Like <see cref="Ask"/>, but tools that only read (Read, Glob, Grep, LS, ...) pass without asking.</summary>
    public const string AskButAllowReads = "ask-but-allow-reads";
    /// <summary>Nothing is asked (only where the operator allows it: <c>Covibe:Agents:Permissions:AllowBypass</c>).</summary>
    public const string Bypass = "bypass";

    public static readonly string[] All = [Ask, AskButAllowReads, Bypass];
}

public static class PermissionStatuses
{
    /// <summary>Waiting for an answer.</summary>
    public const string Pending = "pending";
    public const string Allowed = "allowed";
    public const string Denied = "denied";
    /// <summary>Nobody answered within <c>Covibe:Agents:ApprovalTimeoutSeconds</c>: denied with a message.</summary>
    public const string TimedOut = "timed-out";
    /// <summary>The agent stopped asking (it was interrupted, or it ended).</summary>
    public const string Withdrawn = "withdrawn";
}

/// <summary>
/// One permission prompt of an agent: the tool, what it would do (<see cref="Input"/>), the rules Claude suggests to allow it
/// from now on (<see cref="Suggestions"/>), where it is in the agent's output (<see cref="Position"/>), and how it ended:
/// <see cref="DecidedBy"/> (a member, or null when a rule, the mode or the deadline decided; then <see cref="Reason"/> says which).
/// </summary>
public sealed record AgentPermissionDto(
    string AgentId,
    string RequestId,
    string Tool,
    JsonElement Input,
    JsonElement? Suggestions,
    string? Description,
    long Position,
    DateTime AskedAt,
    DateTime Deadline,
    string Status,
    string? DecidedBy = null,
    string? DecidedByName = null,
    string? Reason = null,
    string? Message = null,
    bool Always = false,
    DateTime? DecidedAt = null);

public sealed record AgentPermissionsResponse(AgentPermissionDto[] Requests);

/// <summary>
/// Allow a prompt (<see cref="RequestId"/>; the oldest waiting when absent). <see cref="Always"/>: allow this tool for this agent
/// from now on; <see cref="Suggestion"/>: instead, the rule Claude suggested at that index (e.g. <c>Bash(npm test)</c>).
/// <see cref="UpdatedInput"/>: run the tool with this input instead (the command edited before allowing it).
/// </summary>
public sealed record ApproveRequest(string? RequestId = null, bool? Always = null, int? Suggestion = null, JsonElement? UpdatedInput = null);

/// <summary>Deny a prompt (the oldest waiting when <see cref="RequestId"/> is absent); Claude reads <see cref="Message"/>.</summary>
public sealed record DenyRequest(string? RequestId = null, string? Message = null);

/// <summary>
/// An agent asks to use a tool. Every member hears it; <see cref="CanAnswer"/>: this member may answer it (the agent's owner
/// and whoever it was handed to).
/// </summary>
public sealed record AgentPermissionRequestMessage(AgentPermissionDto Request, bool CanAnswer) : HubMessage(HubMessageTypes.AgentPermissionRequest);

/// <summary>A prompt was answered (by whom, or by a rule, the mode, the deadline), or withdrawn by the agent.</summary>
public sealed record AgentPermissionAnsweredMessage(AgentPermissionDto Request) : HubMessage(HubMessageTypes.AgentPermissionAnswered);

/// <summary>What a prompt asks, in a few words: "Bash: npm test", "Write: src/app.ts" (for lists, notifications and the stream).</summary>
public static class PermissionText
{
    public static string Summary(string tool, JsonElement input)
    {
        var what = Field(input, "command") ?? Field(input, "file_path") ?? Field(input, "notebook_path") ?? Field(input, "url") ?? Field(input, "pattern") ?? Field(input, "path");
        if (what is null && tool == "AskUserQuestion" && input.ValueKind == JsonValueKind.Object && input.TryGetProperty("questions", out var questions)
            && questions.ValueKind == JsonValueKind.Array && questions.GetArrayLength() > 0)
        {
            what = Field(questions[0], "question");
        }
        what ??= input.ValueKind == JsonValueKind.Object ? input.GetRawText() : null;
        what = what?.ReplaceLineEndings(" ");
        return what is null ? tool : $"{tool}: {(what.Length <= 200 ? what : what[..200] + "…")}";
    }

    private static string? Field(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

public static class AgentActionKinds
{
    public const string Input = "input";
    public const string Interrupt = "interrupt";
    public const string Kill = "kill";
    public const string End = "end";
    public const string Allow = "allow";
    public const string Deny = "deny";
    public const string Grant = "grant";
    public const string Revoke = "revoke";
    public const string TakeOver = "take-over";
    public const string AskControl = "ask-control";
}

/// <summary>
/// Who did what to an agent: <see cref="ByName"/> (null: Covibe itself, by a rule or a deadline) and <see cref="Text"/> ("allowed
/// Bash: npm test"), at <see cref="Position"/> in its output (it happened once the output had reached there).
/// </summary>
public sealed record AgentActionDto(long Id, string AgentId, string Kind, string Text, string? By, string? ByName, long Position, DateTime At);

public sealed record AgentActionsResponse(AgentActionDto[] Actions);

/// <summary>Live: someone did something to an agent (every member hears it).</summary>
public sealed record AgentActionMessage(AgentActionDto Action) : HubMessage(HubMessageTypes.AgentAction);

/// <summary>On subscribing from a position: what was done to the agent from there on, to show in place as its output replays.</summary>
public sealed record AgentActionsMessage(string AgentId, AgentActionDto[] Actions) : HubMessage(HubMessageTypes.AgentActions);

/// <summary>Hand an agent to a member (<see cref="UserId"/>), or to the whole team (<see cref="WholeTeam"/>).</summary>
public sealed record GrantControlRequest(string? UserId = null, bool? WholeTeam = null);

/// <summary>Who controls an agent besides its owner: members by id and name, or <c>*</c> (the whole team).</summary>
public sealed record AgentControllerDto(string UserId, string? Name, string GrantedBy, DateTime GrantedAt);

public sealed record AgentControllersResponse(string OwnerId, string OwnerName, AgentControllerDto[] Controllers);

/// <summary>A member asks the agent's owner for control; <see cref="CanGrant"/>: this member (its owner) can hand it over.</summary>
public sealed record AgentControlRequestedMessage(string AgentId, string UserId, string UserName, bool CanGrant) : HubMessage(HubMessageTypes.AgentControlRequested);

/// <summary>The team's defaults for its agents: their permission mode (null: the server's), and whether its owner may take members' agents over.</summary>
public sealed record TeamAgentSettings(string? PermissionMode, bool OwnerTakesOver);

/// <summary>A browser's Web Push subscription, as <c>PushSubscription.toJSON()</c> gives it.</summary>
public sealed record PushSubscriptionRequest(string? Endpoint, PushSubscriptionKeys? Keys);

public sealed record PushSubscriptionKeys(string? P256dh, string? Auth);

/// <summary>The server's VAPID public key: <c>applicationServerKey</c> for <c>pushManager.subscribe</c>.</summary>
public sealed record PushKeyResponse(string PublicKey);

/// <summary>
/// What a Web Push message carries (JSON, encrypted for the browser): the notification's title and text, what it is about
/// (<see cref="AgentId"/>, <see cref="RequestId"/>), and <see cref="Url"/> to open when it is tapped.
/// </summary>
public sealed record PushNote(string Title, string Body, string Url, string Tag, string? AgentId = null, string? RequestId = null);
