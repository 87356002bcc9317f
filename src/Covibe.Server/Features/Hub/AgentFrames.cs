using System.Text;
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
/// The hub's frames of agent output (<c>agent_output</c>). A whole chunk's frame is made once per audience (the owner,
/// who may control the agent, or a teammate) and per form (<see cref="AgentFrameForm"/>) and kept on the chunk, so a
/// fan-out to many watchers serializes and compresses each chunk once.
/// </summary>
internal static class AgentFrames
{
    /// <summary>The frame of bytes of an agent's output starting at <paramref name="position"/>: text when they are UTF-8, else base64.</summary>
    public static byte[] Frame(string agentId, string ownerId, long position, ReadOnlySpan<byte> data, bool canControl)
    {
        var valid = Utf8.IsValid(data);
        var message = new AgentOutputMessage(agentId, ownerId,
            valid ? Encoding.UTF8.GetString(data) : Convert.ToBase64String(data),
            canControl, position, position + data.Length, valid ? null : "base64");
        return HubJson.Serialize(message);
    }

    /// <summary>The shared frame of a whole chunk for one audience, in <paramref name="form"/>.</summary>
    public static byte[] Of(string agentId, string ownerId, OutputChunk chunk, bool canControl, AgentFrameForm form) =>
        chunk.Rendering((canControl ? 1 : 0) + 2 * (int)form, (agentId, ownerId), Render);

    private static byte[] Render(OutputChunk chunk, (string AgentId, string OwnerId) agent, int slot)
    {
        var canControl = (slot & 1) != 0;
        return (AgentFrameForm)(slot / 2) switch
        {
            AgentFrameForm.Deflated => SharedDeflate.Compress(Of(agent.AgentId, agent.OwnerId, chunk, canControl, AgentFrameForm.Plain)),
            AgentFrameForm.SocketIo => SocketIoCodec.Event(Of(agent.AgentId, agent.OwnerId, chunk, canControl, AgentFrameForm.Plain)),
            _ => Frame(agent.AgentId, agent.OwnerId, chunk.Start, chunk.Data, canControl),
        };
    }
}
