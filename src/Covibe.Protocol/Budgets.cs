namespace Covibe.Protocol;

/// <summary>What a budget covers: the whole team, or a member (a named one, or each member alike).</summary>
public static class BudgetScopes
{
    public const string Team = "team";
    public const string Member = "member";
    /// <summary>The operator's ceiling for every team (<c>Covibe:Agents:Budgets</c>): no owner's budget goes above it.</summary>
    public const string Server = "server";
}

/// <summary>The span a budget counts over, in UTC: today, or this calendar month.</summary>
public static class BudgetPeriods
{
    public const string Day = "day";
    public const string Month = "month";
    public static readonly string[] All = [Day, Month];
}

/// <summary>
/// One budget and where it stands. <see cref="MemberId"/> is null for the team, and for a member budget that applies to
/// each member (then <see cref="SpentUsd"/> is what the caller spent).
/// </summary>
public sealed record BudgetDto(string Scope, string? MemberId, string? MemberName, string Period, double LimitUsd, double SpentUsd, bool Reached, string? SetBy, DateTime? SetAt);

/// <summary>The operator's ceilings for any one team's spend (null: none).</summary>
public sealed record BudgetCeiling(double? TeamUsdPerDay, double? TeamUsdPerMonth);

/// <summary>
/// <c>GET /api/team/budgets</c>: the team's budgets, the operator's ceiling, and the spend they are measured against (the
/// team's and the caller's, today and this month, UTC). After a change, <see cref="WarnedAgents"/> are the running agents
/// the change put over a budget (their watchers were warned).
/// </summary>
public sealed record TeamBudgetsResponse(
    BudgetCeiling Ceiling,
    BudgetDto[] Budgets,
    double TeamTodayUsd,
    double TeamThisMonthUsd,
    double YourTodayUsd,
    double YourThisMonthUsd,
    string[] WarnedAgents);

/// <summary>
/// <c>PUT /api/team/budgets</c> (the team's owner): <see cref="Scope"/> team or member (with <see cref="MemberId"/>, or
/// without it for each member), <see cref="Period"/> day or month, and <see cref="LimitUsd"/> in US dollars (null removes it).
/// </summary>
public sealed record SetBudgetRequest(string? Scope, string? MemberId, string? Period, double? LimitUsd);

/// <summary>
/// A budget was reached: new agents it covers are refused until the period ends or the owner raises it; the running ones it
/// covers (<see cref="AgentIds"/>) keep running, and their watchers see this warning. To every member of the team.
/// </summary>
public sealed record BudgetReachedMessage(
    string Scope,
    string? MemberId,
    string? MemberName,
    string Period,
    double LimitUsd,
    double SpentUsd,
    string[] AgentIds,
    string Message) : HubMessage(HubMessageTypes.BudgetReached);
