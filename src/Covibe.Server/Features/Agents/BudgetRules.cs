using System.Globalization;
using Covibe.Protocol;
using Covibe.Server.Data;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// One budget a member's new agent counts against: the team's, the member's (their own, else each member's), or the
/// operator's ceiling; <see cref="AlertSubject"/> names it in <c>budget_alerts</c>.
/// </summary>
public sealed record BudgetRule(string Scope, string? MemberId, string Period, double LimitUsd, string AlertSubject)
{
    public double Spent(TeamSpend spend) => Scope == BudgetScopes.Member ? spend.Member(MemberId!, Period) : spend.Team(Period);

    public bool IsReached(TeamSpend spend) => Spent(spend) >= LimitUsd;
}

/// <summary>What a team's agents spent this month, by member and whether today (agents count in the UTC day they were started).</summary>
public sealed class TeamSpend(IReadOnlyDictionary<(string UserId, bool Today), double> sums)
{
    public double Team(string period) => sums.Where(s => s.Key.Today || period == BudgetPeriods.Month).Sum(s => s.Value);

    public double Member(string userId, string period) =>
        sums.Where(s => s.Key.UserId == userId && (s.Key.Today || period == BudgetPeriods.Month)).Sum(s => s.Value);
}

/// <summary>Which budgets apply, the periods they count over, and what a person is told about them. Pure: unit-tested.</summary>
public static class BudgetRules
{
    /// <summary>
    /// The budgets a new agent of <paramref name="userId"/> counts against, in the order a refusal names them: the member's
    /// own (else each member's), the team's, the operator's ceiling; a day's before a month's.
    /// </summary>
    public static IReadOnlyList<BudgetRule> For(IReadOnlyCollection<Budget> budgets, BudgetCeilingOptions ceiling, string userId)
    {
        var rules = new List<BudgetRule>();
        foreach (var period in BudgetPeriods.All)
        {
            var mine = budgets.FirstOrDefault(b => b.Subject == userId && b.Period == period)
                ?? budgets.FirstOrDefault(b => b.Subject == Budget.EachMemberSubject && b.Period == period);
            if (mine is not null)
            {
                rules.Add(new BudgetRule(BudgetScopes.Member, userId, period, mine.LimitUsd, userId));
            }
        }
        foreach (var period in BudgetPeriods.All)
        {
            if (budgets.FirstOrDefault(b => b.Subject == Budget.TeamSubject && b.Period == period) is { } team)
            {
                rules.Add(new BudgetRule(BudgetScopes.Team, null, period, team.LimitUsd, Budget.TeamSubject));
            }
        }
        foreach (var period in BudgetPeriods.All)
        {
            if (ceiling.For(period) is { } most)
            {
                rules.Add(new BudgetRule(BudgetScopes.Server, null, period, most, BudgetScopes.Server));
            }
        }
        return rules;
    }

    /// <summary>The first instant of the UTC day or month <paramref name="now"/> is in.</summary>
    public static DateTime Start(string period, DateTime now) =>
        period == BudgetPeriods.Day ? now.Date : new DateTime(now.Year, now.Month, 1, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>When the period <paramref name="now"/> is in ends (and the next begins).</summary>
    public static DateTime End(string period, DateTime now) =>
        period == BudgetPeriods.Day ? now.Date.AddDays(1) : Start(period, now).AddMonths(1);

    /// <summary>Why a new agent of the member is refused: which budget, what was spent, and when it may start again.</summary>
    public static string Refusal(BudgetRule rule, TeamSpend spend, DateTime now)
    {
        var (adjective, span) = Words(rule.Period);
        var spent = $"{Usd(rule.Spent(spend))} {span}";
        var again = $"New agents can start again {(rule.Period == BudgetPeriods.Day ? "at" : "on")} {When(rule.Period, now)}";
        return rule.Scope switch
        {
            BudgetScopes.Member => $"Your {adjective} budget of {Usd(rule.LimitUsd)} is spent ({spent}). {again}, or when your team's owner raises it (PUT /api/team/budgets).",
            BudgetScopes.Team => $"Your team's {adjective} budget of {Usd(rule.LimitUsd)} is spent ({spent}). {again}, or when your team's owner raises it (PUT /api/team/budgets).",
            _ => $"This server's {adjective} ceiling for a team, {Usd(rule.LimitUsd)}, is spent ({spent}). {again}, or when its operator raises Covibe:Agents:Budgets:TeamUsdPer{(rule.Period == BudgetPeriods.Day ? "Day" : "Month")}.",
        };
    }

    /// <summary>The warning the team sees when a budget is reached while agents run.</summary>
    public static string Reached(BudgetRule rule, string? memberName, TeamSpend spend, int running, DateTime now)
    {
        var (adjective, span) = Words(rule.Period);
        var whose = rule.Scope switch
        {
            BudgetScopes.Member => $"{memberName ?? "A member"}'s {adjective} budget of {Usd(rule.LimitUsd)}",
            BudgetScopes.Team => $"The team's {adjective} budget of {Usd(rule.LimitUsd)}",
            _ => $"This server's {adjective} ceiling for a team, {Usd(rule.LimitUsd)},",
        };
        var refused = rule.Scope == BudgetScopes.Member ? $"{(memberName is null ? "their" : memberName + "'s")} new agents are" : "new agents are";
        var still = running switch { 0 => "", 1 => "; the 1 running keeps running", _ => $"; the {running} running keep running" };
        return $"{whose} is reached ({Usd(rule.Spent(spend))} {span}): {refused} refused until {When(rule.Period, now)}{still}.";
    }

    public static string Usd(double value) => "$" + value.ToString(value >= 1 || value == 0 ? "0.00" : "0.00##", CultureInfo.InvariantCulture);

    private static (string Adjective, string Span) Words(string period) =>
        period == BudgetPeriods.Day ? ("daily", "today") : ("monthly", "this month");

    private static string When(string period, DateTime now) =>
        period == BudgetPeriods.Day ? "00:00 UTC" : End(period, now).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) + " (UTC)";
}
