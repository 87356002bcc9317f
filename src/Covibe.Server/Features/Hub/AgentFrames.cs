using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using Covibe.Protocol;
using Covibe.Server.Features.Hub.SocketIo;
using Covibe.Web;

namespace Covibe.Server.Features.Hub;

/// <summary>The forms an agent output frame takes on the wire: each is made once per chunk and audience, and shared.</summary>
internal enum AgentFrameForm
{
    /// <summary>A JSON text message (<c>/ws</c>).</summary>
    Plain = 0,

    /// <summary>The JSON deflated once for every <c>/ws</c> connection that negotiated permessage-deflate.</summary>
    Deflated = 1,

    /// <summary>A Socket.IO event, <c>42["agent_output",{...}]</c> (<c>/socket.io/</c>).</summary>
    SocketIo = 2,
}

/// <summary>
/// The hub's frames of agent output (<c>agent_output</c>), as <see cref="PreparedFrame"/>s: a whole chunk's frame is made
/// once per audience (the owner, who may control the agent, or a teammate) and per form (<see cref="AgentFrameForm"/>),
/// WebSocket header included, and kept on the chunk, so a fan-out to many watchers serializes, compresses and frames each
/// chunk once and writes the same bytes to every socket. The JSON is written from the output's bytes (escaped where JSON
/// requires, never through a string).
/// </summary>
internal static class AgentFrames
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>
    /// The frame of bytes of an agent's output starting at <paramref name="position"/> (text when they are UTF-8, else
    /// base64) in <paramref name="form"/>: for one watcher (catching up from its own position), so never compressed.
    /// </summary>
    public static PreparedFrame Frame(string agentId, string ownerId, long position, ReadOnlySpan<byte> data, bool canControl, AgentFrameForm form)
    {
        var json = Json(agentId, ownerId, position, data, canControl);
        return form == AgentFrameForm.SocketIo ? PreparedFrame.Text(SocketIoCodec.Event(json)) : PreparedFrame.Text(json);
    }

    /// <summary>The shared frame of a whole chunk for one audience, in <paramref name="form"/>.</summary>
    public static PreparedFrame Of(string agentId, string ownerId, OutputChunk chunk, bool canControl, AgentFrameForm form) =>
        chunk.Rendering((canControl ? 1 : 0) + 2 * (int)form, (agentId, ownerId), Render);

    /// <summary>
    /// The hub frame (<see cref="AgentOutputMessage"/>'s JSON), written into a buffer of this thread's that the next call
    /// reuses: copy it before that.
    /// </summary>
    internal static ReadOnlySpan<byte> Json(string agentId, string ownerId, long position, ReadOnlySpan<byte> data, bool canControl)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(64 * 1024);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, Options);
        writer.Reset(buffer);
        var valid = Utf8.IsValid(data);
        writer.WriteStartObject();
        writer.WriteString("type"u8, HubMessageTypes.AgentOutput);
        writer.WriteString("agentId"u8, agentId);
        writer.WriteString("owner"u8, ownerId);
        if (valid)
        {
            writer.WriteString("data"u8, data);
        }
        else
        {
            writer.WriteBase64String("data"u8, data);
        }
        writer.WriteBoolean("canControl"u8, canControl);
        writer.WriteNumber("position"u8, position);
        writer.WriteNumber("next"u8, position + data.Length);
        if (!valid)
        {
            writer.WriteString("encoding"u8, "base64"u8);
        }
        writer.WriteEndObject();
        writer.Flush();
        // A large chunk's buffer is not kept for the thread's lifetime.
        var json = buffer.WrittenSpan;
        if (buffer.Capacity > 1024 * 1024)
        {
            var copy = json.ToArray();
            t_buffer = null;
            t_writer = null;
            return copy;
        }
        return json;
    }

    private static PreparedFrame Render(OutputChunk chunk, (string AgentId, string OwnerId) agent, int slot)
    {
        var canControl = (slot & 1) != 0;
        return (AgentFrameForm)(slot / 2) switch
        {
            AgentFrameForm.Deflated => PreparedFrame.Text(SharedDeflate.Compress(Of(agent.AgentId, agent.OwnerId, chunk, canControl, AgentFrameForm.Plain).Payload.Span), compressed: true),
            var form => Frame(agent.AgentId, agent.OwnerId, chunk.Start, chunk.Data, canControl, form),
        };
    }
}
