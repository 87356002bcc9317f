using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;

namespace Covibe.Server.Tests;

/// <summary>Which budgets a member's new agent counts against, and what a person reads about them.</summary>
public sealed class BudgetRulesTests
{
    private static readonly DateTime Now = new(2026, 12, 7, 23, 10, 0, DateTimeKind.Utc);

    private static Budget Row(string subject, string period, double limit) =>
        new() { TeamId = "t", Subject = subject, Period = period, LimitUsd = limit, SetBy = "owner" };

    private static TeamSpend Spend(params (string User, bool Today, double Usd)[] sums) =>
        new(sums.ToDictionary(s => (s.User, s.Today), s => s.Usd));

    [Fact]
    public void AMembersOwnBudget_WinsOverEachMembers_AndEveryRuleIsOrdered_MemberTeamServer_DayBeforeMonth()
    {
        Budget[] budgets = [Row(Budget.TeamSubject, "month", 100), Row(Budget.EachMemberSubject, "day", 2), Row("miguel", "day", 5), Row(Budget.TeamSubject, "day", 10)];
        var rules = BudgetRules.For(budgets, new BudgetCeilingOptions { TeamUsdPerMonth = 500 }, "miguel");
        rules.Select(r => (r.Scope, r.Period, r.LimitUsd, r.AlertSubject)).ShouldBe(
        [
            (BudgetScopes.Member, "day", 5.0, "miguel"),
            (BudgetScopes.Team, "day", 10.0, Budget.TeamSubject),
            (BudgetScopes.Team, "month", 100.0, Budget.TeamSubject),
            (BudgetScopes.Server, "month", 500.0, BudgetScopes.Server),
        ]);
        // Sarah has none of her own: each member's applies to her, counted as hers.
        var sarahs = BudgetRules.For(budgets, new BudgetCeilingOptions(), "sarah");
        sarahs[0].ShouldBe(new BudgetRule(BudgetScopes.Member, "sarah", "day", 2, "sarah"));
        BudgetRules.For([], new BudgetCeilingOptions(), "sarah").ShouldBeEmpty();
    }

    [Fact]
    public void Spend_CountsTodayInTheDay_AndEverythingThisMonthInTheMonth_ByMemberAndTeam()
    {
        var spend = Spend(("sarah", true, 1.5), ("sarah", false, 2), ("miguel", true, 0.25));
        spend.Team("day").ShouldBe(1.75);
        spend.Team("month").ShouldBe(3.75);
        spend.Member("sarah", "day").ShouldBe(1.5);
        spend.Member("sarah", "month").ShouldBe(3.5);
        spend.Member("chen", "month").ShouldBe(0);
        new BudgetRule(BudgetScopes.Team, null, "day", 1.75, "team").IsReached(spend).ShouldBeTrue(); // at the limit is spent
        new BudgetRule(BudgetScopes.Team, null, "day", 1.76, "team").IsReached(spend).ShouldBeFalse();
        new BudgetRule(BudgetScopes.Member, "miguel", "month", 0, "miguel").IsReached(Spend()).ShouldBeTrue(); // 0 stops new agents
    }

    [Fact]
    public void Periods_AreTheUtcDayAndCalendarMonth()
    {
        BudgetRules.Start("day", Now).ShouldBe(new DateTime(2026, 12, 7, 0, 0, 0, DateTimeKind.Utc));
        BudgetRules.End("day", Now).ShouldBe(new DateTime(2026, 12, 8, 0, 0, 0, DateTimeKind.Utc));
        BudgetRules.Start("month", Now).ShouldBe(new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc));
        BudgetRules.End("month", Now).ShouldBe(new DateTime(2027, 1, 1, 0, 0, 0, DateTimeKind.Utc));
    }

    [Fact]
    public void ARefusal_SaysWhichBudget_WhatWasSpent_AndWhenAgentsCanStartAgain()
    {
        var spend = Spend(("miguel", true, 0.025), ("sarah", false, 40));
        BudgetRules.Refusal(new BudgetRule(BudgetScopes.Team, null, "day", 0.02, "team"), spend, Now).ShouldBe(
            "Your team's daily budget of $0.02 is spent ($0.025 today). New agents can start again at 00:00 UTC, or when your team's owner raises it (PUT /api/team/budgets).");
        BudgetRules.Refusal(new BudgetRule(BudgetScopes.Member, "sarah", "month", 30, "sarah"), spend, Now).ShouldBe(
            "Your monthly budget of $30.00 is spent ($40.00 this month). New agents can start again on 2027-01-01 (UTC), or when your team's owner raises it (PUT /api/team/budgets).");
        BudgetRules.Refusal(new BudgetRule(BudgetScopes.Server, null, "month", 40, "server"), spend, Now).ShouldContain("Covibe:Agents:Budgets:TeamUsdPerMonth");
        BudgetRules.Reached(new BudgetRule(BudgetScopes.Member, "miguel", "day", 0.02, "miguel"), "Miguel", spend, 2, Now).ShouldBe(
            "Miguel's daily budget of $0.02 is reached ($0.025 today): Miguel's new agents are refused until 00:00 UTC; the 2 running keep running.");
        BudgetRules.Reached(new BudgetRule(BudgetScopes.Team, null, "day", 0.02, "team"), null, spend, 0, Now).ShouldBe(
            "The team's daily budget of $0.02 is reached ($0.025 today): new agents are refused until 00:00 UTC.");
    }
}
