using System.Text.Json;

namespace Covibe.Server.Features.Agents;

/// <summary>Lines for Claude's <c>--input-format stream-json</c> stdin (shared/design/STREAM_JSON.md, section 7.2).</summary>
public static class StreamJsonInput
{
    public static byte[] UserMessage(string text) => Line(writer =>
    {
        writer.WriteString("type", "user");
        writer.WriteStartObject("message");
        writer.WriteString("role", "user");
        writer.WriteString("content", text);
        writer.WriteEndObject();
        writer.WriteNull("parent_tool_use_id");
        writer.WriteString("session_id", "default");
    });

    public static byte[] Interrupt(string requestId) => Line(writer =>
    {
        writer.WriteString("type", "control_request");
        writer.WriteString("request_id", requestId);
        writer.WriteStartObject("request");
        writer.WriteString("subtype", "interrupt");
        writer.WriteEndObject();
    });

    /// <summary>
    /// The answer to a <c>can_use_tool</c> prompt (STREAM_JSON.md 7.3): allow, always with the input the tool runs with (and the rules
    /// to add for the rest of the session), or deny with the message Claude reads.
    /// </summary>
    public static byte[] PermissionAnswer(string requestId, bool allow, JsonElement? input, IReadOnlyList<PermissionRule> addRules, string? message) => Line(writer =>
    {
        writer.WriteString("type", "control_response");
        writer.WriteStartObject("response");
        writer.WriteString("subtype", "success");
        writer.WriteString("request_id", requestId);
        writer.WriteStartObject("response");
        if (allow)
        {
            writer.WriteString("behavior", "allow");
            writer.WritePropertyName("updatedInput");
            if (input is { ValueKind: JsonValueKind.Object } given)
            {
                given.WriteTo(writer);
            }
            else
            {
                writer.WriteStartObject();
                writer.WriteEndObject();
            }
            if (addRules.Count > 0)
            {
                writer.WriteStartArray("updatedPermissions");
                writer.WriteStartObject();
                writer.WriteString("type", "addRules");
                writer.WriteStartArray("rules");
                foreach (var rule in addRules)
                {
                    writer.WriteStartObject();
                    writer.WriteString("toolName", rule.Tool);
                    if (rule.Specifier is { } specifier)
                    {
                        writer.WriteString("ruleContent", specifier);
                    }
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                writer.WriteString("behavior", "allow");
                writer.WriteString("destination", "session");
                writer.WriteEndObject();
                writer.WriteEndArray();
            }
        }
        else
        {
            writer.WriteString("behavior", "deny");
            writer.WriteString("message", message ?? "Denied.");
        }
        writer.WriteEndObject();
        writer.WriteEndObject();
    });

    private static byte[] Line(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}
