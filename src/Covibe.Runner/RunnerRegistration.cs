using System.Net.Http.Json;
using System.Reflection;
using Covibe.Protocol;

namespace Covibe.Runner;

/// <summary>What a runner remembers: the server, the VM it is, and its own credential.</summary>
public sealed record RunnerState(string Server, string VmId, string Name, string Credential);

/// <summary>Why the runner cannot start, and the exit code that says so to a service manager (2: fix the command).</summary>
public sealed class RunnerException(string message, int exitCode) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>
/// The first run's exchange of a one-time registration token for the runner's own credential, and the rule that the
/// credential crosses the network only encrypted.
/// </summary>
public static class RunnerRegistration
{
    /// <summary>The registration token, for service managers that pass secrets by environment; never passed on to agents or shells.</summary>
    public const string TokenVariable = "COVIBE_RUNNER_TOKEN";

    public static readonly string Version =
        typeof(RunnerRegistration).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>The saved state, or (with a token) a new registration, saved through <paramref name="save"/> first.</summary>
    public static async Task<RunnerState> RegisterAsync(RunnerState? saved, string? server, string? token, bool allowHttp, Action<RunnerState> save,
        CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token))
        {
            return saved is not null && (server is null || Same(server, saved.Server))
                ? saved
                : throw new RunnerException(saved is null
                    ? "This machine is not registered yet: run `covibe runner --server URL --token TOKEN` with the token shown when the VM was added."
                    : $"This runner is registered with {saved.Server}, not {server}. Give --token to register it with {server}.", 2);
        }
        if (server is null)
        {
            throw new RunnerException("Give --server with the registration token (the server's URL as shown when the VM was added).", 2);
        }
        server = server.TrimEnd('/');
        RequireTls(server, allowHttp);
        using var http = new HttpClient { BaseAddress = new Uri(server + "/"), Timeout = TimeSpan.FromSeconds(30) };
        HttpResponseMessage reply;
        try
        {
            reply = await http.PostAsJsonAsync("api/runner/register",
                new RunnerRegisterRequest(token, System.Net.Dns.GetHostName(), Environment.UserName, Version), CovibeJsonContext.Default.RunnerRegisterRequest, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new RunnerException($"Cannot reach {server}: {e.Message}", 2);
        }
        using (reply)
        {
            if (!reply.IsSuccessStatusCode)
            {
                throw new RunnerException($"The server refused the registration: {await ProblemText.DescribeAsync(reply, cancellationToken)}", 2);
            }
            var registered = (await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.RunnerRegisterResponse, cancellationToken))!;
            var state = new RunnerState(server, registered.VmId, registered.Name, registered.Credential);
            save(state);
            return state;
        }
    }

    /// <summary>The credential goes in every request's header: over plain HTTP only to this machine, unless the owner says otherwise.</summary>
    public static void RequireTls(string server, bool allowHttp)
    {
        var uri = new Uri(server);
        if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback && !allowHttp)
        {
            throw new RunnerException($"{server} is plain http:// on another machine: the runner's credential would cross the network unencrypted. " +
                "Use the server's https:// address (behind a TLS proxy, set Covibe:Runners:PublicUrl on the server), or pass --allow-http on a network you trust.", 2);
        }
    }

    private static bool Same(string a, string b) => string.Equals(a.TrimEnd('/'), b.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
}
