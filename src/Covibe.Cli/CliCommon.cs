using System.CommandLine;
using Spectre.Console;

namespace Covibe.Cli;

/// <summary>Options and helpers shared by the client commands.</summary>
internal static class CliCommon
{
    public const string DefaultServer = "http://127.0.0.1:5180";

    public static Option<string?> ServerOption() => new("--server")
    {
        Description = $"Server URL (default: the saved login's, else $COVIBE_SERVER, else {DefaultServer})",
    };

    public static Option<bool> PasswordStdinOption() => new("--password-stdin")
    {
        Description = "Read the password from the first line of standard input instead of prompting",
    };

    public static string ResolveServer(string? given, CredentialStore store) =>
        given ?? store.Load()?.Server ?? Environment.GetEnvironmentVariable("COVIBE_SERVER") ?? DefaultServer;

    public static string ReadPassword(bool fromStdin, string prompt)
    {
        if (fromStdin)
        {
            return Console.In.ReadLine() ?? throw new CliException("--password-stdin was given but standard input is empty.");
        }
        if (Console.IsInputRedirected)
        {
            throw new CliException("Standard input is not a terminal: pass the password with --password-stdin.");
        }
        return AnsiConsole.Prompt(new TextPrompt<string>(prompt).Secret());
    }

    /// <summary>Runs a command body, turning <see cref="CliException"/> into a message on stderr and an exit code.</summary>
    public static void SetHandler(this Command command, Func<ParseResult, CancellationToken, Task> body) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                await body(parse, cancellationToken);
                return Environment.ExitCode; // a body may set it, e.g. `agent logs -f` of a failed agent

            }
            catch (CliException e)
            {
                await Console.Error.WriteLineAsync($"covibe: {e.Message}");
                return e.ExitCode;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return 130;
            }
        });

    public static string Local(DateTime utc) => utc.ToLocalTime().ToString("yyyy-MM-dd HH:mm");
}
