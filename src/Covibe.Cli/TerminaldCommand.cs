using System.CommandLine;
using Covibe.Terminals;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Cli;

/// <summary><c>covibe terminald</c>: seed 004's standalone terminal daemon, configured by its environment variables.</summary>
internal static class TerminaldCommand
{
    public static Command Create()
    {
        var command = new Command("terminald",
            "Run the standalone terminal daemon (seed 004): PTY sessions over WebSocket. Configured by PORT (8787), JWT_SECRET, " +
            "ALLOWED_ORIGINS, ORCHESTRATOR_URL, LOG_LEVEL, MAX_SESSIONS, SESSION_TIMEOUT, MAX_COMMAND_LENGTH, TERMINAL_ROOT, HOST. See docs/terminals.md.");
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) =>
            HostCommand.RunAsync("covibe terminald", "PORT and HOST", () => TerminalDaemon.Build([.. parse.UnmatchedTokens]),
                (app, token) => app.StartAsync(token),
                async (app, token) =>
                {
                    var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
                    await Console.Out.WriteLineAsync($"covibe terminald {TerminalDaemon.Version} listening on {string.Join(", ", addresses)} (WebSocket at /, GET /health, GET /sessions)");
                    await Console.Out.WriteLineAsync(TerminalDaemon.WhereShellsRun(app.Services));
                },
                cancellationToken));
        return command;
    }
}
