using System.Text.Json;
using Covibe.Protocol;

namespace Covibe.Server.Features.Agents;

/// <summary>A member's answer: <see cref="Allow"/> (with <see cref="Always"/> or one of Claude's <see cref="Suggestion"/>s), or deny with <see cref="Message"/>.</summary>
public sealed record PermissionAnswer(string? RequestId, bool Allow, bool Always = false, int? Suggestion = null, JsonElement? UpdatedInput = null, string? Message = null);

public sealed record PermissionResult(AgentPermissionDto? Request, AgentFailure Failure = AgentFailure.None, string? Detail = null)
{
    public static PermissionResult Fail(AgentFailure failure, string detail) => new(null, failure, detail);
}

public sealed record PermissionsResult(AgentPermissionDto[]? Requests, string? NotFound = null);

/// <summary>The line that answers a decided prompt on the agent's stdin.</summary>
public static class PermissionAnswers
{
    public static byte[] Line(PermissionPrompt row)
    {
        var allow = row.Status == PermissionStatuses.Allowed;
        using var input = JsonDocument.Parse(row.UpdatedInput ?? row.Input);
        var rules = row.Rule is { } text && PermissionRule.Parse(text, out _) is { } rule ? [rule] : Array.Empty<PermissionRule>();
        return StreamJsonInput.PermissionAnswer(row.RequestId, allow, input.RootElement, rules, row.Message);
    }
}
