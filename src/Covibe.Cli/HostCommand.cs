using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Cli;

/// <summary>Runs a server command (<c>serve</c>, <c>terminald</c>): configuration errors become one clear line and exit code 2.</summary>
internal static class HostCommand
{
    public static async Task<int> RunAsync(
        string name,
        string listenHint,
        Func<WebApplication> build,
        Func<WebApplication, CancellationToken, Task> start,
        Func<WebApplication, CancellationToken, Task> started,
        CancellationToken cancellationToken)
    {
        // The process's secrets (JWT_SECRET, ENCRYPTION_KEY in its environment) stay out of reach of
        // the shells and agents it starts, even those running as the same user.
        Covibe.Execution.CurrentProcess.DenyInspection();
        WebApplication app;
        try
        {
            app = build();
            await start(app, cancellationToken);
        }
        catch (OptionsValidationException e)
        {
            await Console.Error.WriteLineAsync($"{name}: configuration error: {string.Join(" ", e.Failures)}");
            return 2;
        }
        catch (AggregateException e) when (e.InnerExceptions.All(i => i is OptionsValidationException))
        {
            foreach (var failure in e.InnerExceptions.Cast<OptionsValidationException>().SelectMany(i => i.Failures))
            {
                await Console.Error.WriteLineAsync($"{name}: configuration error: {failure}");
            }
            return 2;
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal)
            || e.Source == "Covibe.Terminals")
        {
            // e.g. --Covibe:Hub:MaxMessageBytes=lots, PORT=abc: the message names the setting and what it needs.
            await Console.Error.WriteLineAsync($"{name}: configuration error: {e.Message}");
            return 2;
        }
        catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync($"{name}: cannot listen: {e.Message}. Choose another address with {listenHint}.");
            return 2;
        }
        await using (app)
        {
            await started(app, cancellationToken);
            await app.WaitForShutdownAsync(cancellationToken);
        }
        return 0;
    }
}
