using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>What a team's agents spent: by member, by day and the costliest, from each agent's recorded cost and tokens.</summary>
public sealed class AgentCosts(IDbContextFactory<CovibeDb> dbs, TimeProvider time)
{
    public const int MaxDays = 366;
    private const int TopAgents = 10;

    /// <summary>The last <paramref name="days"/> days (today, UTC, included) of the caller's team.</summary>
    public async Task<AgentCostsResponse> ForTeamAsync(Caller caller, int days, CancellationToken cancellationToken)
    {
        var to = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var from = to.AddDays(1 - days);
        var since = from.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rows = await (from a in db.Agents
                          join u in db.Users on a.UserId equals u.Id
                          where a.TeamId == caller.TeamId && a.CreatedAt >= since
                          select new { a.Id, a.UserId, u.Name, a.Type, a.Task, a.Status, a.CreatedAt, a.CostUsd, a.InputTokens, a.OutputTokens })
            .ToListAsync(cancellationToken);
        var byMember = rows.GroupBy(r => (r.UserId, r.Name))
            .Select(g => new MemberCost(g.Key.UserId, g.Key.Name, g.Sum(r => r.CostUsd ?? 0), g.Sum(r => r.InputTokens ?? 0), g.Sum(r => r.OutputTokens ?? 0), g.Count()))
            .OrderByDescending(m => m.CostUsd).ThenBy(m => m.Name, StringComparer.Ordinal).ToArray();
        var perDay = rows.GroupBy(r => DateOnly.FromDateTime(r.CreatedAt)).ToDictionary(g => g.Key, g => (Cost: g.Sum(r => r.CostUsd ?? 0), Count: g.Count()));
        var byDay = Enumerable.Range(0, days).Select(i => from.AddDays(i))
            .Select(day => perDay.TryGetValue(day, out var d) ? new DayCost(day, d.Cost, d.Count) : new DayCost(day, 0, 0)).ToArray();
        var top = rows.Where(r => r.CostUsd > 0).OrderByDescending(r => r.CostUsd).Take(TopAgents)
            .Select(r => new AgentCost(r.Id, r.UserId, r.Name, r.Type, r.Task, r.Status, r.CreatedAt, r.CostUsd!.Value)).ToArray();
        return new AgentCostsResponse(from, to, rows.Sum(r => r.CostUsd ?? 0), rows.Sum(r => r.InputTokens ?? 0), rows.Sum(r => r.OutputTokens ?? 0),
            rows.Count, byMember, byDay, top);
    }
}
