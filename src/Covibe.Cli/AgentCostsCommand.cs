using System.CommandLine;
using System.Globalization;
using Covibe.Protocol;
using Spectre.Console;

namespace Covibe.Cli;

/// <summary><c>covibe agent costs</c>: what the team's agents spent, by member, by day and the costliest.</summary>
internal static class AgentCostsCommand
{
    public static Command Create(CredentialStore store)
    {
        var days = new Option<int>("--days") { Description = "How many days back, today included (1-366)", DefaultValueFactory = _ => 30 };
        var command = new Command("costs", "What the team's agents spent: by member, by day, the costliest agents") { days };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var costs = await client.GetAsync($"api/agent/costs?days={parse.GetValue(days).ToString(CultureInfo.InvariantCulture)}", CovibeJsonContext.Default.AgentCostsResponse, ct);
            AnsiConsole.WriteLine($"{Usd(costs.TotalUsd)} spent by {costs.Agents} agent{(costs.Agents == 1 ? "" : "s")} from {costs.From:yyyy-MM-dd} to {costs.To:yyyy-MM-dd} (UTC); "
                + $"{costs.InputTokens.ToString("N0", CultureInfo.InvariantCulture)} tokens in, {costs.OutputTokens.ToString("N0", CultureInfo.InvariantCulture)} out.");
            if (costs.Agents == 0)
            {
                return;
            }
            var members = new Table().AddColumns(new TableColumn("Member"), new TableColumn("Spent").RightAligned(), new TableColumn("Agents").RightAligned(),
                new TableColumn("Tokens in").RightAligned(), new TableColumn("Tokens out").RightAligned());
            foreach (var m in costs.ByMember)
            {
                var you = m.UserId == client.Credentials?.UserId ? " (you)" : "";
                members.AddRow(Markup.Escape(m.Name + you), Usd(m.CostUsd), m.Agents.ToString(CultureInfo.InvariantCulture),
                    m.InputTokens.ToString("N0", CultureInfo.InvariantCulture), m.OutputTokens.ToString("N0", CultureInfo.InvariantCulture));
            }
            AnsiConsole.Write(members);
            // By day, as bars: the days anything was spent.
            if (costs.ByDay.Any(d => d.CostUsd > 0))
            {
                var chart = new BarChart().Label("By day (USD)").WithMaxValue(costs.ByDay.Max(d => d.CostUsd));
                foreach (var day in costs.ByDay.Where(d => d.CostUsd > 0))
                {
                    chart.AddItem(day.Day.ToString("MM-dd", CultureInfo.InvariantCulture), Math.Round(day.CostUsd, 4), Color.Green);
                }
                AnsiConsole.Write(chart);
            }
            if (costs.TopAgents.Length > 0)
            {
                var top = new Table().Title("Costliest agents").AddColumns(new TableColumn("Id").NoWrap(), new TableColumn("Owner"), new TableColumn("Task"),
                    new TableColumn("Status"), new TableColumn("Spent").RightAligned());
                foreach (var a in costs.TopAgents)
                {
                    top.AddRow(a.Id[..Math.Min(12, a.Id.Length)], Markup.Escape(a.OwnerName), Markup.Escape(a.Task.Length <= 40 ? a.Task : a.Task[..40] + "…"), a.Status, Usd(a.CostUsd));
                }
                AnsiConsole.Write(top);
            }
        });
        return command;
    }

    private static string Usd(double value) => "$" + value.ToString("0.0000", CultureInfo.InvariantCulture);
}
