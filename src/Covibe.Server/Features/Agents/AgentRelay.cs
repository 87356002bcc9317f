using Covibe.Server.Features.Auth;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Where an agent's output goes besides this node's watchers: to the other nodes (<c>Cluster.RedisAgentRelay</c>), which
/// keep feeds of their own so their clients watch live. One node: nowhere.
/// </summary>
public interface IAgentOutputRelay
{
    /// <summary>New output of an agent this node follows (called in order, by its one reader).</summary>
    void Appended(AgentFeed feed, AgentFeed.Chunk chunk);

    /// <summary>The agent has finished: <see cref="AgentFeed.FinalStatus"/> at <see cref="AgentFeed.Position"/>.</summary>
    void Ended(AgentFeed feed);
}

public sealed class NoAgentOutputRelay : IAgentOutputRelay
{
    public void Appended(AgentFeed feed, AgentFeed.Chunk chunk)
    {
    }

    public void Ended(AgentFeed feed)
    {
    }
}

/// <summary>A control command (kill, interrupt, input, end) as it travels to the node that follows the agent.</summary>
public sealed record AgentCommand(string AgentId, string Command, string? Data = null);

/// <summary>
/// Takes an owner's control command to the node that follows the agent (its process, its runner connection and its kill
/// deadline are there). One node: every agent is followed here, so nothing is ever sent.
/// </summary>
public interface IAgentControlRoute
{
    /// <summary>The result from node <paramref name="holder"/>; null if it cannot be reached (then the caller is told to try again).</summary>
    Task<AgentResult?> SendAsync(string holder, Caller caller, AgentCommand command, CancellationToken cancellationToken);
}

public sealed class NoAgentControlRoute : IAgentControlRoute
{
    public Task<AgentResult?> SendAsync(string holder, Caller caller, AgentCommand command, CancellationToken cancellationToken) =>
        Task.FromResult<AgentResult?>(null);
}
