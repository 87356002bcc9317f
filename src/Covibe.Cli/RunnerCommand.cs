using System.CommandLine;
using Covibe.Runner;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe runner</c>: runs on a VM and dials out to the server (seed 001's polling / tunnel strategies), so nobody hands
/// the server an SSH key. The first run exchanges the one-time registration token for the runner's own credential (kept
/// encrypted, 0600, in the config directory); later runs use that. Then it stays connected, reconnecting with backoff,
/// and runs the agents and terminals the server asks for, as the user it runs as (src/Covibe.Runner).
/// </summary>
internal static class RunnerCommand
{
    public static Command Create(CredentialStore store)
    {
        var server = new Option<string?>("--server") { Description = "The Covibe server's URL (as shown when the VM was added)" };
        var token = new Option<string?>("--token") { Description = $"The one-time registration token (first run only; or ${RunnerRegistration.TokenVariable}, or --token-file)" };
        var tokenFile = new Option<string?>("--token-file") { Description = "Read the registration token from this file" };
        var transport = new Option<string>("--transport")
        {
            Description = "websocket, poll (HTTPS long polling, for proxies that block WebSockets) or auto (WebSocket, else polling)",
            DefaultValueFactory = _ => "auto",
        };
        transport.AcceptOnlyFromAmong("auto", "websocket", "poll");
        var allowHttp = new Option<bool>("--allow-http") { Description = "Allow a plain http:// server that is not on this machine (the credential would cross the network unencrypted)" };
        var command = new Command("runner", "Run this machine as a runner VM: dial out to the server and run the agents and terminals it asks for. See docs/runner.md.")
        {
            server, token, tokenFile, transport, allowHttp,
        };
        command.SetHandler(async (parse, cancellationToken) =>
        {
            var given = parse.GetValue(token) ?? Environment.GetEnvironmentVariable(RunnerRegistration.TokenVariable)
                ?? (parse.GetValue(tokenFile) is { } file ? (await File.ReadAllTextAsync(file, cancellationToken)).Trim() : null);
            try
            {
                var state = await RunnerRegistration.RegisterAsync(store.LoadRunner(), parse.GetValue(server), given, parse.GetValue(allowHttp), store.SaveRunner,
                    cancellationToken);
                if (!string.IsNullOrEmpty(given))
                {
                    await Console.Out.WriteLineAsync($"Registered as VM '{state.Name}' ({state.VmId}); the credential is saved in {store.Directory} (encrypted, 0600).");
                }
                RunnerRegistration.RequireTls(state.Server, parse.GetValue(allowHttp));
                await using var connection = new RunnerConnection(state, parse.GetValue(transport)!, store.SaveRunner);
                Environment.ExitCode = await connection.RunAsync(cancellationToken);
            }
            catch (RunnerException e)
            {
                throw new CliException(e.Message, e.ExitCode);
            }
        });
        return command;
    }
}
