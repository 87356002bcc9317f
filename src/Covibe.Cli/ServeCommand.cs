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
        var logFormat = new Option<string?>("--log-format") { Description = "How the server logs to standard output: text (the default) or json (one object a line, with trace ids and the node)" };
        logFormat.AcceptOnlyFromAmong("text", "json");
        var command = new Command("serve", "Run the Covibe server (API, WebSocket hub)") { data, urls, dev, logFormat };
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
            if (parse.GetValue(logFormat) is { } format)
            {
                args.Add($"--Logging:Console:FormatterName={(format == "json" ? "json" : "simple")}");
            }
            return await RunAsync([.. args], cancellationToken);
        });
        return command;
    }

    private static Task<int> RunAsync(string[] args, CancellationToken cancellationToken) =>
        HostCommand.RunAsync("covibe serve", "--urls", () => CovibeServer.Build(args), CovibeServer.StartAsync,
            // With JSON logs, standard output is JSON lines only: the banner goes to standard error.
            (app, token) => StartupBanner.WriteAsync(app, ServerLogs.Json(app.Configuration) ? Console.Error : Console.Out, token), cancellationToken);
}
