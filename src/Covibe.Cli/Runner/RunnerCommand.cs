using System.CommandLine;
using System.Net.Http.Json;
using Covibe.Protocol;

namespace Covibe.Cli.Runner;

/// <summary>
/// <c>covibe runner</c>: runs on a VM and dials out to the server (seed 001's polling / tunnel strategies), so nobody hands
/// the server an SSH key. The first run exchanges the one-time registration token for the runner's own credential (kept
/// encrypted, 0600, in the config directory); later runs use that. Then it stays connected, reconnecting with backoff,
/// and runs the agents and terminals the server asks for, as the user it runs as.
/// </summary>
internal static class RunnerCommand
{
    /// <summary>The registration token, for service managers that pass secrets by environment.</summary>
    public const string TokenVariable = "COVIBE_RUNNER_TOKEN";

    public static Command Create(CredentialStore store)
    {
        var server = new Option<string?>("--server") { Description = "The Covibe server's URL (as shown when the VM was added)" };
        var token = new Option<string?>("--token") { Description = $"The one-time registration token (first run only; or ${TokenVariable}, or --token-file)" };
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
            var given = parse.GetValue(token) ?? Environment.GetEnvironmentVariable(TokenVariable)
                ?? (parse.GetValue(tokenFile) is { } file ? (await File.ReadAllTextAsync(file, cancellationToken)).Trim() : null);
            var state = await RegisterAsync(store, parse.GetValue(server), given, parse.GetValue(allowHttp), cancellationToken);
            RequireTls(state.Server, parse.GetValue(allowHttp));
            await using var connection = new RunnerConnection(store, state, parse.GetValue(transport)!);
            Environment.ExitCode = await connection.RunAsync(cancellationToken);
        });
        return command;
    }

    /// <summary>The runner's saved state, or (with a token) a new registration saved first.</summary>
    private static async Task<RunnerState> RegisterAsync(CredentialStore store, string? server, string? token, bool allowHttp, CancellationToken cancellationToken)
    {
        var saved = store.LoadRunner();
        if (string.IsNullOrEmpty(token))
        {
            return saved is not null && (server is null || Same(server, saved.Server))
                ? saved
                : throw new CliException(saved is null
                    ? "This machine is not registered yet: run `covibe runner --server URL --token TOKEN` with the token shown when the VM was added."
                    : $"This runner is registered with {saved.Server}, not {server}. Give --token to register it with {server}.", 2);
        }
        if (server is null)
        {
            throw new CliException("Give --server with the registration token (the server's URL as shown when the VM was added).", 2);
        }
        server = server.TrimEnd('/');
        RequireTls(server, allowHttp);
        using var http = new HttpClient { BaseAddress = new Uri(server + "/"), Timeout = TimeSpan.FromSeconds(30) };
        HttpResponseMessage reply;
        try
        {
            reply = await http.PostAsJsonAsync("api/runner/register",
                new RunnerRegisterRequest(token, System.Net.Dns.GetHostName(), Environment.UserName, Covibe.Server.Features.Health.HealthApi.Version), CovibeJsonContext.Default.RunnerRegisterRequest, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new CliException($"Cannot reach {server}: {e.Message}", 2);
        }
        using (reply)
        {
            if (!reply.IsSuccessStatusCode)
            {
                throw new CliException($"The server refused the registration: {await CovibeClient.DescribeFailureAsync(reply, cancellationToken)}", 2);
            }
            var registered = (await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.RunnerRegisterResponse, cancellationToken))!;
            var state = new RunnerState(server, registered.VmId, registered.Name, registered.Credential);
            store.SaveRunner(state);
            await Console.Out.WriteLineAsync($"Registered as VM '{registered.Name}' ({registered.VmId}); the credential is saved in {store.Directory} (encrypted, 0600).");
            return state;
        }
    }

    /// <summary>The credential goes in every request's header: over plain HTTP only to this machine, unless the owner says otherwise.</summary>
    private static void RequireTls(string server, bool allowHttp)
    {
        var uri = new Uri(server);
        if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback && !allowHttp)
        {
            throw new CliException($"{server} is plain http:// on another machine: the runner's credential would cross the network unencrypted. " +
                "Use the server's https:// address (behind a TLS proxy, set Covibe:Runners:PublicUrl on the server), or pass --allow-http on a network you trust.", 2);
        }
    }

    private static bool Same(string a, string b) => string.Equals(a.TrimEnd('/'), b.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
}
