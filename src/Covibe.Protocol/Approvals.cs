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
