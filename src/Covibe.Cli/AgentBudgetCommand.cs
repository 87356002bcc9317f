using System.CommandLine;
using System.Globalization;
using Covibe.Protocol;
using Spectre.Console;

namespace Covibe.Cli;

/// <summary><c>covibe agent budget show|set|remove</c>: the team's budgets, where the spend stands, and (the owner) setting them.</summary>
internal static class AgentBudgetCommand
{
    public static Command Create(CredentialStore store)
    {
        var budget = new Command("budget", "What the team's agents may spend a day or a month, and where the spend stands");
        budget.Subcommands.Add(Show(store));
        budget.Subcommands.Add(Change(store, set: true));
        budget.Subcommands.Add(Change(store, set: false));
        return budget;
    }

    private static Command Show(CredentialStore store)
    {
        var command = new Command("show", "The team's budgets, the server's ceiling, and what was spent today and this month (UTC)");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            Print(await client.GetAsync("api/team/budgets", CovibeJsonContext.Default.TeamBudgetsResponse, ct));
        });
        return command;
    }

    private static Command Change(CredentialStore store, bool set)
    {
        var amount = new Argument<double>("usd") { Description = "The limit in US dollars (0 stops new agents)" };
        var per = new Option<string>("--per") { Description = "day or month (UTC)", Required = true };
        per.AcceptOnlyFromAmong(BudgetPeriods.All);
        var member = new Option<string?>("--member") { Description = "A member's budget (their name, or a unique start of their id) instead of the team's" };
        var each = new Option<bool>("--each-member") { Description = "The budget each member has unless one of their own is set" };
        var command = set
            ? new Command("set", "Set a budget (the team's owner): new agents it covers are refused once it is spent") { amount, per, member, each }
            : new Command("remove", "Remove a budget (the team's owner)") { per, member, each };
        command.SetHandler(async (parse, ct) =>
        {
            if (parse.GetValue(member) is not null && parse.GetValue(each))
            {
                throw new CliException("Give --member or --each-member, not both.");
            }
            using var client = CovibeClient.ForSavedLogin(store);
            var memberId = parse.GetValue(member) is { } given ? await AgentSteeringCommands.MemberAsync(client, given, ct) : null;
            var scope = memberId is not null || parse.GetValue(each) ? BudgetScopes.Member : BudgetScopes.Team;
            var request = new SetBudgetRequest(scope, memberId, parse.GetValue(per), set ? parse.GetValue(amount) : null);
            var budgets = await client.SendJsonAsync(HttpMethod.Put, "api/team/budgets", request,
                CovibeJsonContext.Default.SetBudgetRequest, CovibeJsonContext.Default.TeamBudgetsResponse, ct);
            Print(budgets);
            if (budgets.WarnedAgents.Length > 0)
            {
                AnsiConsole.MarkupLine($"[yellow]Already reached: {budgets.WarnedAgents.Length} running agent{(budgets.WarnedAgents.Length == 1 ? "" : "s")} keep running; their watchers were warned.[/]");
            }
        });
        return command;
    }

    private static void Print(TeamBudgetsResponse budgets)
    {
        AnsiConsole.WriteLine($"Spent by the team: {Usd(budgets.TeamTodayUsd)} today, {Usd(budgets.TeamThisMonthUsd)} this month; by you: {Usd(budgets.YourTodayUsd)} today, {Usd(budgets.YourThisMonthUsd)} this month (UTC).");
        if (budgets.Ceiling.TeamUsdPerDay is not null || budgets.Ceiling.TeamUsdPerMonth is not null)
        {
            AnsiConsole.WriteLine($"This server's ceiling for a team: {Limit(budgets.Ceiling.TeamUsdPerDay)} a day, {Limit(budgets.Ceiling.TeamUsdPerMonth)} a month.");
        }
        if (budgets.Budgets.Length == 0)
        {
            AnsiConsole.WriteLine("No budgets set. The team's owner sets one with: covibe agent budget set USD --per day|month [--member NAME | --each-member]");
            return;
        }
        var table = new Table().AddColumns(new TableColumn("Budget"), new TableColumn("Per"), new TableColumn("Limit").RightAligned(),
            new TableColumn("Spent").RightAligned(), new TableColumn("State"));
        foreach (var b in budgets.Budgets)
        {
            var whose = b.Scope == BudgetScopes.Team ? "The team" : b.MemberId is null ? "Each member (you)" : b.MemberName ?? b.MemberId;
            table.AddRow(Markup.Escape(whose), b.Period, Usd(b.LimitUsd), Usd(b.SpentUsd), b.Reached ? "[red]reached[/]" : "[green]ok[/]");
        }
        AnsiConsole.Write(table);
    }

    private static string Limit(double? value) => value is { } v ? Usd(v) : "no limit";

    private static string Usd(double value) => "$" + value.ToString("0.00##", CultureInfo.InvariantCulture);
}
