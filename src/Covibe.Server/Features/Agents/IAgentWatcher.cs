using Covibe.Web;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// One subscriber to an agent's output, seen from the agents' side: the hub implements it for a connection and
/// builds its own frames. <see cref="AgentOutputPump"/> hands it the output in order, each piece with its position,
/// and tells it of gaps and of the end. A whole chunk of the ring is handed over as the chunk, so a watcher can render
/// it once (<see cref="OutputChunk.Rendering{TState, T}"/>) for everyone who watches the same agent.
/// </summary>
public interface IAgentWatcher
{
    /// <summary>The member watching, or null before they joined a team: the agent's owner may control it.</summary>
    string? UserId { get; }

    /// <summary>Queues a whole chunk without waiting; false when there is no room (the pump then catches up at the reader's pace).</summary>
    bool TryQueue(string agentId, string ownerId, OutputChunk chunk, bool canControl);

    /// <summary>Sends a whole chunk, waiting for room.</summary>
    Task SendAsync(string agentId, string ownerId, OutputChunk chunk, bool canControl, CancellationToken cancellationToken);

    /// <summary>Sends bytes of the agent's output that start at <paramref name="position"/> (read from its log, or the tail of a chunk), waiting for room.</summary>
    Task SendAsync(string agentId, string ownerId, long position, ReadOnlyMemory<byte> data, bool canControl, CancellationToken cancellationToken);

    /// <summary>Bytes from <paramref name="from"/> to <paramref name="goesOnAt"/> cannot be read from here; the output goes on at <paramref name="goesOnAt"/>.</summary>
    Task SendGapAsync(string agentId, long from, long goesOnAt, string reason, CancellationToken cancellationToken);

    /// <summary>What members did to the agent from the position subscribed from (shown in place as its output replays).</summary>
    Task SendActionsAsync(string agentId, Protocol.AgentActionDto[] actions, CancellationToken cancellationToken);

    /// <summary>The agent finished at <paramref name="position"/> with <paramref name="status"/>: nothing more follows. Never waits.</summary>
    void Ended(string agentId, long position, string status);
}
