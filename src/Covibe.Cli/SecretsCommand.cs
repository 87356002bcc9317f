using System.CommandLine;
using Covibe.Server;
using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace Covibe.Cli;

/// <summary><c>covibe secrets rotate</c>: re-encrypt stored credentials with the current ENCRYPTION_KEY.</summary>
internal static class SecretsCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = "The server's data directory (as for `covibe serve`)" };
        var dev = new Option<bool>("--dev") { Description = "Use the development key kept in the data directory" };
        var rotate = new Command("rotate",
            "Re-encrypt every stored credential with ENCRYPTION_KEY. Set the old key(s) in ENCRYPTION_KEYS_PREVIOUS first; " +
            "the server may keep running (it reads both while this runs).") { data, dev };
        rotate.TreatUnmatchedTokensAsErrors = false;
        rotate.SetHandler(async (parse, ct) =>
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
            try
            {
                await using var app = CovibeServer.Build([.. args], b => b.Logging.ClearProviders());
                await app.Services.MigrateDatabaseAsync(ct);
                var rotated = await AnsiConsole.Status().StartAsync("Re-encrypting stored credentials…", _ => app.Services.GetRequiredService<SealedSecrets>().RotateAsync(ct));
                Console.WriteLine($"Re-encrypted {rotated} credential(s) with key {app.Services.GetRequiredService<SecretBox>().CurrentKeyId}. " +
                    "Once every server runs with the new ENCRYPTION_KEY, ENCRYPTION_KEYS_PREVIOUS can be emptied.");
            }
            catch (OptionsValidationException e)
            {
                throw new CliException($"configuration error: {string.Join(" ", e.Failures)}", 2);
            }
            catch (System.Security.Cryptography.CryptographicException e)
            {
                throw new CliException($"{e.Message} Nothing was changed for that credential.", 2);
            }
        });
        var secrets = new Command("secrets", "Manage the server's encryption of stored credentials") { rotate };
        return secrets;
    }
}
