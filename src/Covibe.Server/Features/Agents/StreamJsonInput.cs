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
