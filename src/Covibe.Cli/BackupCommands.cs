using System.CommandLine;
using System.Security.Cryptography;
using Covibe.Server;
using Covibe.Server.Features.Backups;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe backup</c> and <c>covibe restore</c> (docs/operations.md, "Backups"): the server's database and data directory,
/// configured as for <c>covibe serve</c> (<c>--data</c>, <c>DATABASE_URL</c>), optionally encrypted to an operator's key.
/// </summary>
internal static class BackupCommands
{
    public static Command Backup()
    {
        var output = new Option<string>("--out", "-o") { Description = "The backup file to write (a new one; outside the data directory)", Required = true };
        var recipient = new Option<string?>("--encrypt-to") { Description = "An RSA public key (PEM): only its private half opens the backup" };
        var (data, dev) = Where();
        var command = new Command("backup", "A consistent backup of the server while it runs: its database (SQLite online backup or pg_dump), keys made in development, agents' logs, previews' and boxes' state") { output, recipient, data, dev };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetHandler(async (parse, ct) =>
        {
            using var key = parse.GetValue(recipient) is { } pem ? Key(pem, publicHalf: true) : null;
            await using var app = Build(parse, data, dev);
            var done = await Run(() => app.Services.GetRequiredService<BackupWriter>().CreateAsync(parse.GetValue(output)!, key, Say, ct));
            Console.WriteLine($"Backed up to {done.Path} ({done.Bytes / 1048576.0:0.0} MiB): the {done.Database} database and {done.Files} files ({done.FileBytes / 1048576.0:0.0} MiB)"
                + (done.Encrypted ? ", encrypted to the key given." : "."));
            Console.WriteLine("Keep JWT_SECRET and ENCRYPTION_KEY with it when you set them yourself: sealed credentials need ENCRYPTION_KEY to open.");
        });
        return command;
    }

    public static Command Restore()
    {
        var file = new Argument<string>("backup") { Description = "A file made by covibe backup" };
        var key = new Option<string?>("--decrypt-with") { Description = "The RSA private key (PEM) an encrypted backup was made for" };
        var (data, dev) = Where();
        var command = new Command("restore", "Restore a backup into an empty data directory (and, with DATABASE_URL, an empty PostgreSQL database)") { file, key, data, dev };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetHandler(async (parse, ct) =>
        {
            using var rsa = parse.GetValue(key) is { } pem ? Key(pem, publicHalf: false) : null;
            await using var app = Build(parse, data, dev);
            var done = await Run(() => app.Services.GetRequiredService<BackupRestorer>().RestoreAsync(parse.GetValue(file)!, rsa, Say, ct));
            Console.WriteLine($"Restored the {done.Database} database and {done.Files} files ({done.FileBytes / 1048576.0:0.0} MiB) of a backup made {done.CreatedAt} by Covibe {done.Version}. "
                + "Start the server on it (with the same JWT_SECRET and ENCRYPTION_KEY, if you set them); it upgrades the schema if it is newer.");
        });
        return command;
    }

    private static (Option<string?> Data, Option<bool> Dev) Where() => (
        new Option<string?>("--data") { Description = "The server's data directory (as for `covibe serve`)" },
        new Option<bool>("--dev") { Description = "As `covibe serve --dev` (the development keys in the data directory)" });

    private static Microsoft.AspNetCore.Builder.WebApplication Build(ParseResult parse, Option<string?> data, Option<bool> dev)
    {
        var args = new List<string>(parse.UnmatchedTokens);
        if (parse.GetValue(data) is { } directory)
        {
            args.Add($"--Covibe:DataDirectory={directory}");
        }
        if (parse.GetValue(dev))
        {
            args.Add("--environment=Development");
        }
        return CovibeServer.Build([.. args], b => b.Logging.ClearProviders());
    }

    private static RSA Key(string path, bool publicHalf)
    {
        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(File.ReadAllText(path));
            if (!publicHalf)
            {
                rsa.ExportParameters(includePrivateParameters: true); // a public key cannot open a backup: say so now
            }
            return rsa;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException or IOException)
        {
            rsa.Dispose();
            throw new CliException($"{path} is not an RSA {(publicHalf ? "public" : "private")} key in PEM ({e.Message}). Make a pair with: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out backup-key.pem && openssl rsa -in backup-key.pem -pubout -out backup-key.pub.pem", 2);
        }
    }

    private static async Task<T> Run<T>(Func<Task<T>> work)
    {
        try
        {
            return await work();
        }
        catch (BackupException e)
        {
            throw new CliException(e.Message, 1);
        }
    }

    private static void Say(string line) => Console.Error.WriteLine(line);
}
