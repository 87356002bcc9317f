using Covibe.Web;
using Covibe.Server.Features.Auth;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Where an agent's output goes besides this node's watchers: to the other nodes (<c>Cluster.RedisAgentRelay</c>), which
/// keep feeds of their own so their clients watch live. One node: nowhere.
/// </summary>
public interface IAgentOutputRelay
{
    /// <summary>New output of an agent this node follows (called in order, by its one reader).</summary>
    void Appended(AgentFeed feed, OutputChunk chunk);

    /// <summary>The agent has finished: <see cref="AgentFeed.FinalStatus"/> at <see cref="AgentFeed.Position"/>.</summary>
    void Ended(AgentFeed feed);
}

public sealed class NoAgentOutputRelay : IAgentOutputRelay
{
    public void Appended(AgentFeed feed, OutputChunk chunk)
    {
    }

    public void Ended(AgentFeed feed)
    {
    }
}

/// <summary>
/// Seed 001's <c>agent:{agentId}:output</c>: the last part of every agent's output, kept where every node can read it, for a
/// node that holds neither the bytes in memory nor a log it can read (an agent on another machine, older than its memory).
/// One node: it reads its agents' logs, so nothing is kept.
/// </summary>
public interface IAgentOutputStore
{
    /// <summary>
    /// The kept output from <paramref name="position"/> on, contiguous, at most <paramref name="maxBytes"/>: its start is past
    /// <paramref name="position"/> when the bytes between are no longer kept. Null when nothing from there on is kept.
    /// </summary>
    Task<(long Start, byte[] Data)?> ReadAsync(string agentId, long position, int maxBytes, CancellationToken cancellationToken);
}

public sealed class NoAgentOutputStore : IAgentOutputStore
{
    public Task<(long Start, byte[] Data)?> ReadAsync(string agentId, long position, int maxBytes, CancellationToken cancellationToken) =>
        Task.FromResult<(long, byte[])?>(null);
}

/// <summary>A control command (kill, interrupt, input, end) as it travels to the node that follows the agent.</summary>
public sealed record AgentCommand(string AgentId, string Command, string? Data = null)
{
    /// <summary>Between nodes only: start an agent another node saved (its VM's runner is connected to this one).</summary>
    public const string Start = "start";

    /// <summary>Write the answer to permission request <see cref="Data"/> (decided in the database already) to the agent.</summary>
    public const string Answer = "answer";
}

/// <summary>
/// Takes an owner's control command to the node that follows the agent (its process, its runner connection and its kill
/// deadline are there). One node: every agent is followed here, so nothing is ever sent.
/// </summary>
public interface IAgentControlRoute
{
    /// <summary>
    /// The result from node <paramref name="holder"/> (a success carries no agent: read it here); null if it cannot be
    /// reached (then the caller is told to try again).
    /// </summary>
    Task<AgentResult?> SendAsync(string holder, Caller caller, AgentCommand command, CancellationToken cancellationToken);

    /// <summary>What this node does with the commands other nodes send it; set once, when the server starts.</summary>
    void Serve(Func<Caller, AgentCommand, Task<AgentResult>> carryOut);
}

public sealed class NoAgentControlRoute : IAgentControlRoute
{
    public Task<AgentResult?> SendAsync(string holder, Caller caller, AgentCommand command, CancellationToken cancellationToken) =>
        Task.FromResult<AgentResult?>(null);

    public void Serve(Func<Caller, AgentCommand, Task<AgentResult>> carryOut)
    {
    }
}

/// <summary>Carries out, with the same checks, what other nodes send for the agents this node follows.</summary>
public sealed class AgentControlServer(IAgentControlRoute route, AgentService agents) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        route.Serve((caller, command) => command.Command == AgentCommand.Start
            ? agents.StartHereAsync(caller, command.AgentId, CancellationToken.None)
            : agents.ControlAsync(caller, command, CancellationToken.None, here: true));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
