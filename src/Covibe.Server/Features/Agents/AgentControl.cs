using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Who may control an agent (input, interrupt, kill, approvals, and its branch's commit, push, merge): its owner, and the
/// members it was handed to (<see cref="AgentController"/>; <c>*</c> for the whole team). The one place the rule lives.
/// </summary>
public sealed class AgentControl(IDbContextFactory<CovibeDb> dbs)
{
    /// <summary>Whether <paramref name="userId"/> controls <paramref name="agent"/> now (asked of the database: a grant just revoked counts).</summary>
    public async Task<bool> AllowsAsync(Agent agent, string userId, CancellationToken cancellationToken)
    {
        if (agent.UserId == userId)
        {
            return true;
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.AgentControllers.AnyAsync(c => c.AgentId == agent.Id && (c.UserId == userId || c.UserId == AgentController.WholeTeam), cancellationToken);
    }

    /// <summary>Everyone who controls the agent: its owner first, then the grants (<c>*</c>: the whole team).</summary>
    public async Task<string[]> ControllersAsync(string agentId, string ownerId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var granted = await db.AgentControllers.Where(c => c.AgentId == agentId).Select(c => c.UserId).ToListAsync(cancellationToken);
        return [ownerId, .. granted];
    }

    public static bool Includes(IReadOnlyCollection<string> controllers, string? userId) =>
        userId is not null && (controllers.Contains(userId) || controllers.Contains(AgentController.WholeTeam));

    public const string Refused = "Only the agent's owner, and the members they handed it to, can control it; you can watch it (ask its owner for control).";
}
