using System.Text;
using System.Text.Unicode;
using Covibe.Protocol;
using Covibe.Web;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// The hub's frames of agent output (<c>agent_output</c>). A whole chunk's frame is made once per audience (the owner,
/// who may control the agent, or a teammate) and per form (plain, or deflated for connections that negotiated
/// compression) and kept on the chunk, so a fan-out to many watchers serializes and compresses each chunk once.
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

    /// <summary>The shared frame of a whole chunk for one audience, deflated when <paramref name="compressed"/>.</summary>
    public static byte[] Of(string agentId, string ownerId, OutputChunk chunk, bool canControl, bool compressed) =>
        chunk.Rendering((canControl ? 1 : 0) + (compressed ? 2 : 0), (agentId, ownerId), Render);

    private static byte[] Render(OutputChunk chunk, (string AgentId, string OwnerId) agent, int slot)
    {
        var canControl = (slot & 1) != 0;
        return (slot & 2) != 0
            ? SharedDeflate.Compress(Of(agent.AgentId, agent.OwnerId, chunk, canControl, compressed: false))
            : Frame(agent.AgentId, agent.OwnerId, chunk.Start, chunk.Data, canControl);
    }
}
