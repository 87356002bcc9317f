using Covibe.Server.Data;
using Covibe.Server.Features.Cluster;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Who may control an agent (input, interrupt, kill, approvals, and its branch's commit, push, merge): its owner, and the
/// members it was handed to (<see cref="AgentController"/>; <c>*</c> for the whole team). The one place the rule lives.
/// Each node keeps the controllers of the agents it has feeds of on the feed (<see cref="AgentFeed.Controllers"/>), so a
/// frame of output says per watcher whether they control it without asking the database; a change on any node reaches
/// every node as a cluster signal, and the feeds there read it again.
/// </summary>
public sealed class AgentControl
{
    private const string Signal = "agent-controllers";
    private readonly IDbContextFactory<CovibeDb> _dbs;
    private readonly AgentFeeds _feeds;
    private readonly IClusterSignals _signals;
    private readonly ILogger<AgentControl> _logger;

    public AgentControl(IDbContextFactory<CovibeDb> dbs, AgentFeeds feeds, IClusterSignals signals, ILogger<AgentControl> logger)
    {
        (_dbs, _feeds, _signals, _logger) = (dbs, feeds, signals, logger);
        feeds.Started += feed => _ = RefreshAsync(feed.AgentId);
        signals.Received += (signal, agentId) =>
        {
            if (signal == Signal)
            {
                _ = RefreshAsync(agentId);
            }
        };
    }

    public const string Refused = "Only the agent's owner, and the members they handed it to, can control it; you can watch it (ask its owner for control).";

    /// <summary>Whether <paramref name="userId"/> controls <paramref name="agent"/> now (asked of the database: a grant just revoked counts).</summary>
    public async Task<bool> AllowsAsync(Agent agent, string userId, CancellationToken cancellationToken)
    {
        if (agent.UserId == userId)
        {
            return true;
        }
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        return await db.AgentControllers.AnyAsync(c => c.AgentId == agent.Id && (c.UserId == userId || c.UserId == AgentController.WholeTeam), cancellationToken);
    }

    /// <summary>Everyone who controls the agent: its owner first, then the grants (<c>*</c>: the whole team).</summary>
    public async Task<string[]> ControllersAsync(string agentId, string ownerId, CancellationToken cancellationToken)
    {
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        var granted = await db.AgentControllers.Where(c => c.AgentId == agentId).Select(c => c.UserId).ToListAsync(cancellationToken);
        return [ownerId, .. granted];
    }

    public static bool Includes(IReadOnlyCollection<string> controllers, string? userId) =>
        userId is not null && (controllers.Contains(userId) || controllers.Contains(AgentController.WholeTeam));

    /// <summary>The agent's controllers changed (here): every node's feed of it reads them again.</summary>
    public void Changed(string agentId) => _signals.Send(Signal, agentId);

    private async Task RefreshAsync(string agentId)
    {
        try
        {
            if (_feeds.Get(agentId) is { } feed)
            {
                feed.Controllers = await ControllersAsync(agentId, feed.OwnerId, CancellationToken.None);
            }
        }
        catch (Exception e) when (e is DbUpdateException or InvalidOperationException or System.Data.Common.DbException)
        {
            AgentsLog.ControllersNotRead(_logger, agentId, e);
        }
    }
}
