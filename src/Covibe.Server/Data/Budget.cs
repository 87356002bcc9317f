namespace Covibe.Server.Data;

/// <summary>
/// A budget the team's owner set (<c>budgets</c>): what the team's agents, or a member's, may spend in a UTC day or month.
/// </summary>
public sealed class Budget
{
    /// <summary><see cref="Subject"/> of the team's own budget.</summary>
    public const string TeamSubject = "team";

    /// <summary><see cref="Subject"/> of the budget each member has unless one of their own is set.</summary>
    public const string EachMemberSubject = "members";

    public required string TeamId { get; init; }

    /// <summary><see cref="TeamSubject"/>, <see cref="EachMemberSubject"/>, or one member's user id.</summary>
    public required string Subject { get; init; }

    /// <summary><c>day</c> or <c>month</c> (<see cref="Protocol.BudgetPeriods"/>).</summary>
    public required string Period { get; init; }

    public double LimitUsd { get; set; }

    public required string SetBy { get; set; }

    public DateTime SetAt { get; set; }
}

/// <summary>
/// That a budget was reached in one period (<c>budget_alerts</c>): the owner is told once per budget, limit and period,
/// however many nodes see the spend cross it.
/// </summary>
public sealed class BudgetAlert
{
    public required string TeamId { get; init; }

    /// <summary>As <see cref="Budget.Subject"/>, but a member's id for a budget of each member, and <c>server</c> for the operator's ceiling.</summary>
    public required string Subject { get; init; }

    public required string Period { get; init; }

    /// <summary>The first instant of the day or month it was reached in.</summary>
    public DateTime PeriodStart { get; init; }

    /// <summary>The limit that was reached: raised and reached again in the same period, the owner is told again.</summary>
    public double LimitUsd { get; init; }

    public DateTime ReachedAt { get; init; }
}
