using System.CommandLine;
using Covibe.Protocol;
using Covibe.Server;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe env</c>: the team's containers (seed 003's getTeamEnvironmentStatus); and
/// <c>covibe containers team</c>: the operator's per-team switch (seed 003's team-specific feature flag).
/// </summary>
internal static class EnvCommands
{
    public static Command Env(CredentialStore store)
    {
        var command = new Command("env", "Your team's environment: its containers, their status, health, limits and since when they run");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var env = await client.GetAsync("api/team/environment", CovibeJsonContext.Default.TeamEnvironmentResponse, ct);
            Console.WriteLine(env.Engine switch
            {
                "off" => "Your team's agents and terminals run on the server's machine (sandboxed), not in containers.",
                "ok" => "Your team's agents and terminals run in containers.",
                _ => $"Containers are on for your team, but: {env.Problem}",
            });
            if (env.Containers.Length == 0)
            {
                return;
            }
            // Seed 003's names are long: one line for the name, one for the rest, fits any terminal.
            foreach (var c in env.Containers)
            {
                Console.WriteLine(c.Name);
                var details = new List<string> { c.Type, c.Status, $"health {c.Health}" };
                if (c.Ports.Length > 0)
                {
                    details.Add("ports " + string.Join(", ", c.Ports));
                }
                if (c.Limits is { } l)
                {
                    details.Add($"{l.MemoryBytes / (1024 * 1024)} MiB, {l.Cpus:0.##} CPU");
                }
                if (c.Started is { } started)
                {
                    details.Add("started " + CliCommon.Local(started));
                }
                Console.WriteLine("  " + string.Join(" · ", details));
            }
        });
        return command;
    }

    public static Command Containers()
    {
        var team = new Argument<string>("team") { Description = "The team's id" };
        var state = new Argument<string>("state") { Description = "on, off, or default (follow USE_DOCKER_CONTAINERS / USE_DOCKER_AGENTS)" };
        state.AcceptOnlyFromAmong("on", "off", "default");
        var data = new Option<string?>("--data") { Description = "The server's data directory (as for `covibe serve`)" };
        var dev = new Option<bool>("--dev") { Description = "As `covibe serve --dev`" };
        var set = new Command("team", "Turn containers on or off for one team (seed 003's team-specific feature flag); takes effect for new agents and terminals") { team, state, data, dev };
        set.TreatUnmatchedTokensAsErrors = false;
        set.SetHandler(async (parse, ct) =>
        {
            var args = new List<string>(parse.UnmatchedTokens);
            if (parse.GetValue(data) is { } dir)
            {
                args.Add($"--Covibe:DataDirectory={dir}");
            }
            if (parse.GetValue(dev))
            {
                args.Add("--environment=Development");
            }
            await using var app = CovibeServer.Build([.. args], b => b.Logging.ClearProviders());
            await app.Services.MigrateDatabaseAsync(ct);
            await using var db = await app.Services.GetRequiredService<IDbContextFactory<CovibeDb>>().CreateDbContextAsync(ct);
            var row = await db.Teams.SingleOrDefaultAsync(t => t.Id == parse.GetValue(team), ct)
                ?? throw new CliException($"There is no team '{parse.GetValue(team)}' in this server's database.", 2);
            row.UseContainers = parse.GetValue(state) switch { "on" => true, "off" => false, _ => null };
            await db.SaveChangesAsync(ct);
            Console.WriteLine($"Team {row.Name}: containers {parse.GetValue(state)}. Running agents stay where they are; new agents and terminals follow.");
        });
        return new Command("containers", "Operator settings for containers") { set };
    }
}
