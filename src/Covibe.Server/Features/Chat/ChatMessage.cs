namespace Covibe.Server.Features.Chat;

/// <summary>Seed 001: <c>messages (id, team_id, user_id, content, timestamp)</c>.</summary>
public sealed class ChatMessage
{
    public long Id { get; init; }
    public required string TeamId { get; init; }
    public required string UserId { get; init; }
    public required string Content { get; init; }
    public DateTime Timestamp { get; init; }
    /// <summary>Null for what a member said; <c>activity</c> for what they did that the team should see (merged an agent's branch).</summary>
    public string? Kind { get; init; }
}
