using System.Text;
using System.Text.Json;
using Covibe.Protocol;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Claude Code's stream-json lines (shared/design/STREAM_JSON.md) as <see cref="AgentEvent"/>s.
/// Tolerant by design: unknown types become <c>unknown</c>, lines that are not JSON become
/// <c>output</c>, and nothing here throws on bad input.
/// </summary>
public static class StreamJson
{
    public static IEnumerable<AgentEvent> Parse(ReadOnlySpan<byte> line, long position)
    {
        var trimmed = line.TrimEnd("\r\n"u8);
        if (trimmed.IsEmpty)
        {
            return [];
        }
        if (trimmed[0] != (byte)'{')
        {
            return [new AgentEvent(position, "output", Text: Encoding.UTF8.GetString(trimmed))];
        }
        try
        {
            using var document = JsonDocument.Parse(trimmed.ToArray());
            return FromJson(document.RootElement, position).ToList();
        }
        catch (JsonException)
        {
            return [new AgentEvent(position, "output", Text: Encoding.UTF8.GetString(trimmed))];
        }
    }

    private static IEnumerable<AgentEvent> FromJson(JsonElement root, long position)
    {
        var type = String(root, "type");
        switch (type)
        {
            case "system":
                var subtype = String(root, "subtype");
                yield return subtype == "init"
                    ? new AgentEvent(position, "init", Model: String(root, "model"), Text: String(root, "cwd"))
                    : new AgentEvent(position, "system", Text: subtype);
                break;
            case "assistant" or "user":
                if (root.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.Object)
                {
                    var model = String(message, "model");
                    if (message.TryGetProperty("content", out var content))
                    {
                        if (content.ValueKind == JsonValueKind.String)
                        {
                            yield return new AgentEvent(position, "text", Text: content.GetString(), Model: model);
                        }
                        else if (content.ValueKind == JsonValueKind.Array)
                        {
                            foreach (var block in content.EnumerateArray())
                            {
                                if (Block(block, position, model) is { } e)
                                {
                                    yield return e;
                                }
                            }
                        }
                    }
                }
                break;
            case "result":
                yield return new AgentEvent(position, "result",
                    Text: String(root, "result") ?? String(root, "subtype"),
                    IsError: root.TryGetProperty("is_error", out var isError) && isError.ValueKind == JsonValueKind.True,
                    CostUsd: Number(root, "total_cost_usd") ?? Number(root, "cost_usd"),
                    InputTokens: root.TryGetProperty("usage", out var usage) ? Long(usage, "input_tokens") : null,
                    OutputTokens: root.TryGetProperty("usage", out var usage2) ? Long(usage2, "output_tokens") : null);
                break;
            case "control_request" when root.TryGetProperty("request", out var request) && String(request, "subtype") == "can_use_tool":
                // Claude asks whoever hosts it before using a tool (STREAM_JSON.md 7.3); the team answers.
                yield return new AgentEvent(position, "permission_request",
                    Text: String(request, "title") ?? String(request, "description"),
                    Tool: String(request, "tool_name") ?? "",
                    ToolUseId: String(request, "tool_use_id"),
                    Input: request.TryGetProperty("input", out var toolInput) ? toolInput.Clone() : null,
                    RequestId: String(root, "request_id"),
                    Suggestions: request.TryGetProperty("permission_suggestions", out var suggestions) && suggestions.ValueKind == JsonValueKind.Array ? suggestions.Clone() : null);
                break;
            case "control_cancel_request":
                // It no longer waits for that answer (it was interrupted).
                yield return new AgentEvent(position, "permission_cancel", RequestId: String(root, "request_id"));
                break;
            default:
                yield return new AgentEvent(position, "unknown", Text: type);
                break;
        }
    }

    private static AgentEvent? Block(JsonElement block, long position, string? model) => String(block, "type") switch
    {
        "text" => new AgentEvent(position, "text", Text: String(block, "text"), Model: model),
        "thinking" => new AgentEvent(position, "thinking", Text: String(block, "thinking"), Model: model),
        "tool_use" => new AgentEvent(position, "tool_use", Tool: String(block, "name"), ToolUseId: String(block, "id"),
            Input: block.TryGetProperty("input", out var input) ? input.Clone() : null),
        "tool_result" => new AgentEvent(position, "tool_result", ToolUseId: String(block, "tool_use_id"), Text: ResultText(block),
            IsError: block.TryGetProperty("is_error", out var err) && err.ValueKind == JsonValueKind.True),
        _ => null,
    };

    private static string? ResultText(JsonElement block)
    {
        if (!block.TryGetProperty("content", out var content))
        {
            return null;
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString();
        }
        return content.ValueKind == JsonValueKind.Array
            ? string.Join("\n", content.EnumerateArray().Select(b => String(b, "text")).Where(t => t is not null))
            : null;
    }

    private static string? String(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static double? Number(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    private static long? Long(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : null;
}
