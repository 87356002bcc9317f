using System.CommandLine;
using Covibe.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Cli;

/// <summary><c>covibe serve</c>: the coordination server, on SQLite in the data directory unless told otherwise.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = "Data directory (default: $COVIBE_DATA, else ~/.local/share/covibe)" };
        var urls = new Option<string?>("--urls") { Description = $"Addresses to listen on, ';'-separated (default: $ASPNETCORE_URLS, else {CliCommon.DefaultServer})" };
        var dev = new Option<bool>("--dev") { Description = "Development mode: generates and keeps a JWT secret in the data directory instead of requiring JWT_SECRET" };
        var command = new Command("serve", "Run the Covibe server (API, WebSocket hub)") { data, urls, dev };
        // Anything else (e.g. --Covibe:Hub:MaxMessageBytes=131072) is passed to the server's configuration.
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (parse, cancellationToken) =>
        {
            var args = new List<string>(parse.UnmatchedTokens);
            if (parse.GetValue(data) is { } dir)
            {
                args.Add($"--Covibe:DataDirectory={dir}");
            }
            var listen = parse.GetValue(urls)
                ?? (Environment.GetEnvironmentVariable("ASPNETCORE_URLS") is { Length: > 0 } ? null : CliCommon.DefaultServer);
            if (listen is not null)
            {
                args.Add($"--urls={listen}");
            }
            if (parse.GetValue(dev))
            {
                args.Add("--environment=Development");
            }
            return await RunAsync([.. args], cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        WebApplication app;
        try
        {
            app = CovibeServer.Build(args);
            await CovibeServer.StartAsync(app, cancellationToken);
        }
        catch (OptionsValidationException e)
        {
            await Console.Error.WriteLineAsync($"covibe serve: configuration error: {string.Join(" ", e.Failures)}");
            return 2;
        }
        catch (AggregateException e) when (e.InnerExceptions.All(i => i is OptionsValidationException))
        {
            foreach (var failure in e.InnerExceptions.Cast<OptionsValidationException>().SelectMany(i => i.Failures))
            {
                await Console.Error.WriteLineAsync($"covibe serve: configuration error: {failure}");
            }
            return 2;
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
        {
            // e.g. --Covibe:Hub:MaxMessageBytes=lots: the message names the setting and the type it needs.
            await Console.Error.WriteLineAsync($"covibe serve: configuration error: {e.Message}");
            return 2;
        }
        catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync($"covibe serve: cannot listen: {e.Message}. Choose another address with --urls.");
            return 2;
        }
        await using (app)
        {
            await StartupBanner.WriteAsync(app, Console.Out, cancellationToken);
            await app.WaitForShutdownAsync(cancellationToken);
        }
        return 0;
    }
}
