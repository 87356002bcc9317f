using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Events;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Agents;

/// <summary>A change of budget, or why it was refused (in words for the owner).</summary>
public sealed record BudgetChange(TeamBudgetsResponse? Budgets, AgentFailure Failure = AgentFailure.None, string? Detail = null, Dictionary<string, string[]>? Errors = null);

/// <summary>
/// Budgets (issue 29): the team's owner sets what the team's agents, each member's or one member's may spend a UTC day or
/// month, within the operator's ceiling (<see cref="BudgetCeilingOptions"/>). A new agent that a spent budget covers is
/// refused (<see cref="RefusalAsync(CovibeDb, string, string, CancellationToken)"/>, in the spawn's own transaction); when an
/// agent's spend reaches one, the team is warned which running agents it covers (they keep running) and the owner is notified,
/// once per budget and period. A change and a spawn of the same team take turns (<see cref="Serialized"/>), so each spawn is
/// judged by the budget before the change or after it, never by half of each.
/// </summary>
public sealed class AgentBudgets(
    IDbContextFactory<CovibeDb> dbs,
    ITeamEvents events,
    Push.PushService push,
    IOptions<AgentsOptions> options,
    TimeProvider time,
    ILogger<AgentBudgets> logger)
{
    public const double MaxUsd = 1_000_000_000;

    private BudgetCeilingOptions Ceiling => options.Value.Budgets;

    /// <summary>Whether the operator set a ceiling: then every team's spawns are checked, budgets or not.</summary>
    public bool HasCeiling => Ceiling.TeamUsdPerDay is not null || Ceiling.TeamUsdPerMonth is not null;

    /// <summary>What a spawn and a budget change of <paramref name="teamId"/> take turns on.</summary>
    public static string SerialKey(string teamId) => "spend:" + teamId;

    /// <summary>Why a new agent of the member would be refused for what was spent, or null; read in <paramref name="db"/>'s transaction.</summary>
    public async Task<string?> RefusalAsync(CovibeDb db, string teamId, string userId, CancellationToken cancellationToken)
    {
        var rules = BudgetRules.For(await db.Budgets.AsNoTracking().Where(b => b.TeamId == teamId).ToListAsync(cancellationToken), Ceiling, userId);
        if (rules.Count == 0)
        {
            return null;
        }
        var now = time.GetUtcNow().UtcDateTime;
        var spend = await SpendAsync(db, teamId, now, cancellationToken);
        return rules.FirstOrDefault(r => r.IsReached(spend)) is { } reached ? BudgetRules.Refusal(reached, spend, now) : null;
    }

    /// <summary>The same, on a connection of its own: a spawn asks early, before it makes anything.</summary>
    public async Task<string?> RefusalAsync(string teamId, string userId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await RefusalAsync(db, teamId, userId, cancellationToken);
    }

    public async Task<TeamBudgetsResponse> ListAsync(Caller caller, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await ReadAsync(db, caller, [], cancellationToken);
    }

    /// <summary>The team's owner sets (or, with no limit, removes) one budget; the running agents it puts over are warned.</summary>
    public async Task<BudgetChange> SetAsync(Caller caller, SetBudgetRequest request, CancellationToken cancellationToken)
    {
        var v = new Validator();
        if (request.Scope is not (BudgetScopes.Team or BudgetScopes.Member))
        {
            v.Fail("scope", "'scope' must be team or member.");
        }
        if (request.Period is null || !BudgetPeriods.All.Contains(request.Period))
        {
            v.Fail("period", "'period' must be day or month (UTC).");
        }
        if (request.Scope == BudgetScopes.Team && request.MemberId is not null)
        {
            v.Fail("memberId", "A team budget names no member; leave out 'memberId'.");
        }
        if (request.LimitUsd is { } limit && (!double.IsFinite(limit) || limit < 0 || limit > MaxUsd))
        {
            v.Fail("limitUsd", $"'limitUsd' must be between 0 and {MaxUsd:0} US dollars, or null to remove the budget.");
        }
        else if (request.LimitUsd is { } wanted && request.Period is { } period && BudgetPeriods.All.Contains(period) && Ceiling.For(period) is { } most && wanted > most)
        {
            v.Fail("limitUsd", $"This server's {(period == BudgetPeriods.Day ? "daily" : "monthly")} ceiling for a team is {BudgetRules.Usd(most)}: set a budget at or below it.");
        }
        if (!v.IsValid)
        {
            return new BudgetChange(null, AgentFailure.Invalid, "Fix the fields listed in 'errors'.", v.Errors);
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (!await caller.IsTeamOwnerAsync(db, cancellationToken))
        {
            return new BudgetChange(null, AgentFailure.Forbidden, "Only the team's owner sets the team's budgets.");
        }
        if (request.MemberId is { } memberId
            && !await db.Users.AnyAsync(u => u.Id == memberId && u.TeamId == caller.TeamId && u.RemovedAt == null, cancellationToken))
        {
            return new BudgetChange(null, AgentFailure.Invalid, "Fix the fields listed in 'errors'.",
                new() { ["memberId"] = [$"Your team has no member '{memberId}'. See them with covibe team show (GET /api/team)."] });
        }
        var subject = request.Scope == BudgetScopes.Team ? Budget.TeamSubject : request.MemberId ?? Budget.EachMemberSubject;
        List<Warning> warnings;
        await using (var transaction = await db.BeginSerializedAsync(SerialKey(caller.TeamId), cancellationToken))
        {
            var row = await db.Budgets.SingleOrDefaultAsync(b => b.TeamId == caller.TeamId && b.Subject == subject && b.Period == request.Period, cancellationToken);
            var now = time.GetUtcNow().UtcDateTime;
            if (request.LimitUsd is not { } limitUsd)
            {
                if (row is not null)
                {
                    db.Budgets.Remove(row);
                }
            }
            else if (row is null)
            {
                db.Budgets.Add(new Budget { TeamId = caller.TeamId, Subject = subject, Period = request.Period!, LimitUsd = limitUsd, SetBy = caller.UserId, SetAt = now });
            }
            else
            {
                (row.LimitUsd, row.SetBy, row.SetAt) = (limitUsd, caller.UserId, now);
            }
            await db.SaveChangesAsync(cancellationToken);
            // Read after the change, in its turn: a spawn before it is counted among the running, one after it met the new limit.
            warnings = request.LimitUsd is null ? [] : await ReachedAsync(db, caller.TeamId, subject, request.Period!, now, cancellationToken);
            foreach (var warning in warnings)
            {
                await AlertAsync(db, caller.TeamId, warning.Rule, now, cancellationToken);
            }
            await transaction.CommitAsync(cancellationToken);
        }
        AgentsLog.BudgetSet(logger, caller.TeamId, subject, request.Period!, request.LimitUsd, caller.UserId);
        foreach (var warning in warnings)
        {
            Warn(caller.TeamId, warning, ownerId: null);
        }
        return new BudgetChange(await ReadAsync(db, caller, [.. warnings.SelectMany(w => w.Running).Distinct()], cancellationToken));
    }

    /// <summary>
    /// After <paramref name="agent"/>'s recorded cost grew: any budget over it that is now reached is told, once per budget,
    /// limit and period on however many nodes (the team is warned, the owner and the member notified).
    /// </summary>
    public async Task SpentAsync(Agent agent, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var budgets = await db.Budgets.AsNoTracking().Where(b => b.TeamId == agent.TeamId).ToListAsync(cancellationToken);
        var rules = BudgetRules.For(budgets, Ceiling, agent.UserId);
        if (rules.Count == 0)
        {
            return;
        }
        var now = time.GetUtcNow().UtcDateTime;
        var spend = await SpendAsync(db, agent.TeamId, now, cancellationToken);
        var owner = await db.Teams.Where(t => t.Id == agent.TeamId).Select(t => t.OwnerId).SingleAsync(cancellationToken);
        foreach (var rule in rules.Where(r => r.IsReached(spend)))
        {
            if (await AlertAsync(db, agent.TeamId, rule, now, cancellationToken))
            {
                Warn(agent.TeamId, await WarningAsync(db, agent.TeamId, rule, spend, now, cancellationToken), owner);
            }
        }
    }

    /// <summary>A budget reached, with what it is measured against and the running agents it covers.</summary>
    private sealed record Warning(BudgetRule Rule, TeamSpend Spend, string? MemberName, string[] Running, DateTime Now);

    /// <summary>The rules of budget <paramref name="subject"/> (for each member: every member without one of their own) that are reached.</summary>
    private async Task<List<Warning>> ReachedAsync(CovibeDb db, string teamId, string subject, string period, DateTime now, CancellationToken cancellationToken)
    {
        var budgets = await db.Budgets.AsNoTracking().Where(b => b.TeamId == teamId).ToListAsync(cancellationToken);
        var spend = await SpendAsync(db, teamId, now, cancellationToken);
        // The team's rules are the same whoever asks; each member's, every current member's.
        var members = subject == Budget.EachMemberSubject
            ? await db.Users.Where(u => u.TeamId == teamId && u.RemovedAt == null).Select(u => u.Id).ToListAsync(cancellationToken)
            : [subject == Budget.TeamSubject ? "" : subject];
        var reached = members
            .SelectMany(m => BudgetRules.For(budgets, Ceiling, m))
            .Where(r => r.Period == period && (subject == Budget.TeamSubject ? r.Scope == BudgetScopes.Team : r.Scope == BudgetScopes.Member) && r.IsReached(spend))
            .DistinctBy(r => r.AlertSubject)
            .ToList();
        var warnings = new List<Warning>();
        foreach (var rule in reached)
        {
            warnings.Add(await WarningAsync(db, teamId, rule, spend, now, cancellationToken));
        }
        return warnings;
    }

    private static async Task<Warning> WarningAsync(CovibeDb db, string teamId, BudgetRule rule, TeamSpend spend, DateTime now, CancellationToken cancellationToken)
    {
        var member = rule.MemberId;
        var running = await db.Agents.AsNoTracking()
            .Where(a => a.TeamId == teamId && !AgentStatuses.Final.Contains(a.Status) && (member == null || a.UserId == member))
            .OrderBy(a => a.CreatedAt).Select(a => a.Id).ToArrayAsync(cancellationToken);
        var name = member is null ? null : await db.Users.Where(u => u.Id == member).Select(u => u.Name).SingleOrDefaultAsync(cancellationToken);
        return new Warning(rule, spend, name, running, now);
    }

    /// <summary>Tells the team (and, with <paramref name="ownerId"/>, the owner's and the member's devices) that a budget is reached.</summary>
    private void Warn(string teamId, Warning warning, string? ownerId)
    {
        var (rule, spend) = (warning.Rule, warning.Spend);
        var message = BudgetRules.Reached(rule, warning.MemberName, spend, warning.Running.Length, warning.Now);
        AgentsLog.BudgetReached(logger, teamId, rule.Scope, rule.Period, rule.LimitUsd, rule.Spent(spend), warning.Running.Length);
        events.Publish(teamId, new BudgetReachedMessage(rule.Scope, rule.MemberId, warning.MemberName, rule.Period, rule.LimitUsd, rule.Spent(spend), warning.Running, message));
        if (ownerId is not null)
        {
            string[] who = rule.MemberId is { } member && member != ownerId ? [ownerId, member] : [ownerId];
            push.Notify(who, teamId, new PushNote("Budget reached", message, "/", $"covibe-budget-{rule.AlertSubject}-{rule.Period}"));
        }
    }

    /// <summary>Records that <paramref name="rule"/> was reached in this period at its limit; false if that was recorded already.</summary>
    private static async Task<bool> AlertAsync(CovibeDb db, string teamId, BudgetRule rule, DateTime now, CancellationToken cancellationToken) =>
        await db.Database.ExecuteSqlRawAsync(
            "INSERT INTO budget_alerts (team_id, subject, period, period_start, limit_usd, reached_at) VALUES ({0}, {1}, {2}, {3}, {4}, {5}) " +
            "ON CONFLICT (team_id, subject, period, period_start) DO UPDATE SET limit_usd = excluded.limit_usd, reached_at = excluded.reached_at " +
            "WHERE budget_alerts.limit_usd <> excluded.limit_usd",
            [teamId, rule.AlertSubject, rule.Period, BudgetRules.Start(rule.Period, now), rule.LimitUsd, now], cancellationToken) == 1;

    /// <summary>What the team's agents spent this month, by member and whether today, in one query.</summary>
    private static async Task<TeamSpend> SpendAsync(CovibeDb db, string teamId, DateTime now, CancellationToken cancellationToken)
    {
        var month = BudgetRules.Start(BudgetPeriods.Month, now);
        var day = BudgetRules.Start(BudgetPeriods.Day, now);
        var sums = await db.Agents.AsNoTracking()
            .Where(a => a.TeamId == teamId && a.CreatedAt >= month && a.CostUsd != null)
            .GroupBy(a => new { a.UserId, Today = a.CreatedAt >= day })
            .Select(g => new { g.Key.UserId, g.Key.Today, Cost = g.Sum(a => a.CostUsd!.Value) })
            .ToListAsync(cancellationToken);
        return new TeamSpend(sums.ToDictionary(s => (s.UserId, s.Today), s => s.Cost));
    }

    private async Task<TeamBudgetsResponse> ReadAsync(CovibeDb db, Caller caller, string[] warned, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var budgets = await db.Budgets.AsNoTracking().Where(b => b.TeamId == caller.TeamId).ToListAsync(cancellationToken);
        var names = await db.Users.AsNoTracking().Where(u => u.TeamId == caller.TeamId).ToDictionaryAsync(u => u.Id, u => u.Name, cancellationToken);
        var spend = await SpendAsync(db, caller.TeamId, now, cancellationToken);
        var shown = budgets
            .OrderBy(b => b.Subject switch { Budget.TeamSubject => 0, Budget.EachMemberSubject => 1, _ => 2 })
            .ThenBy(b => names.GetValueOrDefault(b.Subject), StringComparer.Ordinal)
            .ThenBy(b => b.Period == BudgetPeriods.Day ? 0 : 1)
            .Select(b =>
            {
                var member = b.Subject is Budget.TeamSubject or Budget.EachMemberSubject ? null : b.Subject;
                var spent = b.Subject == Budget.TeamSubject ? spend.Team(b.Period) : spend.Member(member ?? caller.UserId, b.Period);
                return new BudgetDto(b.Subject == Budget.TeamSubject ? BudgetScopes.Team : BudgetScopes.Member, member,
                    member is null ? null : names.GetValueOrDefault(member), b.Period, b.LimitUsd, spent, spent >= b.LimitUsd, names.GetValueOrDefault(b.SetBy), b.SetAt);
            })
            .ToArray();
        return new TeamBudgetsResponse(new BudgetCeiling(Ceiling.TeamUsdPerDay, Ceiling.TeamUsdPerMonth), shown,
            spend.Team(BudgetPeriods.Day), spend.Team(BudgetPeriods.Month), spend.Member(caller.UserId, BudgetPeriods.Day),
            spend.Member(caller.UserId, BudgetPeriods.Month), warned);
    }
}
