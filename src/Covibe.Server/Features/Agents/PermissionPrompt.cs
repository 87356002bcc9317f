namespace Covibe.Server.Features.Agents;

/// <summary>
/// One permission prompt of an agent (<c>agent_permissions</c>), kept from the moment it is seen in the agent's output until
/// long after: who answered it, how, when. Keyed by the agent and the CLI's own request id, so reading the output again (a
/// restart, another node taking the agent over) finds it rather than asking twice.
/// </summary>
public sealed class PermissionPrompt
{
    public required string AgentId { get; init; }
    public required string RequestId { get; init; }
    public required string TeamId { get; init; }
    public required string Tool { get; init; }
    public string? ToolUseId { get; init; }
    /// <summary>The tool's input as the agent asked (JSON).</summary>
    public required string Input { get; init; }
    /// <summary>The rules Claude suggested (JSON array of PermissionUpdate), if any.</summary>
    public string? Suggestions { get; init; }
    public string? Description { get; init; }
    /// <summary>Where the prompt is in the agent's output.</summary>
    public long Position { get; init; }
    public DateTime AskedAt { get; init; }
    public DateTime Deadline { get; init; }
    public required string Status { get; set; }
    /// <summary>The member who answered; null when a rule, the mode or the deadline did (<see cref="Reason"/>).</summary>
    public string? DecidedBy { get; set; }
    public string? Reason { get; set; }
    /// <summary>A denial's message (Claude reads it).</summary>
    public string? Message { get; set; }
    /// <summary>The input the tool runs with, when the member changed it (JSON).</summary>
    public string? UpdatedInput { get; set; }
    /// <summary>The rule added with an "allow always", e.g. <c>Bash(npm test)</c>.</summary>
    public string? Rule { get; set; }
    public DateTime? DecidedAt { get; set; }
}

/// <summary>A member other than its owner who may control an agent (<c>agent_controllers</c>); <c>*</c> for the whole team.</summary>
public sealed class AgentController
{
    public const string WholeTeam = "*";

    public required string AgentId { get; init; }
    public required string UserId { get; init; }
    public required string GrantedBy { get; init; }
    public DateTime GrantedAt { get; init; }
}

/// <summary>
/// What a member (or a rule, or the deadline) did to an agent (<c>agent_actions</c>): an input, an approval, a denial, an
/// interrupt, a kill, a grant or a handover, with where in its output it happened, so that a late joiner sees it in place.
/// </summary>
public sealed class AgentAction
{
    public long Id { get; init; }
    public required string AgentId { get; init; }
    public required string TeamId { get; init; }
    /// <summary>Who; null when the server did (a rule, the deadline).</summary>
    public string? UserId { get; init; }
    public required string Kind { get; init; }
    public required string Text { get; init; }
    public long Position { get; init; }
    public DateTime At { get; init; }
}
