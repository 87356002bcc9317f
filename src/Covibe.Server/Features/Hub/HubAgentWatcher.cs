using Covibe.Protocol;
using Covibe.Server.Features.Agents;
using Covibe.Web;

namespace Covibe.Server.Features.Hub;

/// <summary>A hub connection as a watcher of agent output: agent output goes on its stream budget, in the hub's frames.</summary>
internal sealed class HubAgentWatcher(HubConnection connection) : IAgentWatcher
{
    public string? UserId => connection.Member?.UserId;

    public bool TryQueue(string agentId, string ownerId, OutputChunk chunk, bool canControl) =>
        connection.TryQueueAgentFrame(AgentFrames.Of(agentId, ownerId, chunk, canControl, connection.FrameForm));

    public Task SendAsync(string agentId, string ownerId, OutputChunk chunk, bool canControl, CancellationToken cancellationToken) =>
        connection.SendAgentFrameAsync(AgentFrames.Of(agentId, ownerId, chunk, canControl, connection.FrameForm), cancellationToken);

    public Task SendAsync(string agentId, string ownerId, long position, ReadOnlyMemory<byte> data, bool canControl, CancellationToken cancellationToken) =>
        connection.SendAgentFrameAsync(AgentFrames.Frame(agentId, ownerId, position, data.Span, canControl, connection.FrameForm), cancellationToken);

    public Task SendGapAsync(string agentId, long from, long goesOnAt, string reason, CancellationToken cancellationToken) =>
        connection.SendStreamAsync(HubJson.Serialize(new AgentOutputGapMessage(agentId, from, goesOnAt, reason)), cancellationToken);

    public Task SendActionsAsync(string agentId, AgentActionDto[] actions, CancellationToken cancellationToken) =>
        connection.SendStreamAsync(HubJson.Serialize(new AgentActionsMessage(agentId, actions)), cancellationToken);

    public void Ended(string agentId, long position, string status) =>
        connection.TrySend(HubJson.Serialize(new AgentOutputEndMessage(agentId, position, status)));
}
