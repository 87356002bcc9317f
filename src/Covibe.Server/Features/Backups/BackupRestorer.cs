using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using Covibe.Server.Data;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Covibe.Server.Features.Backups;

/// <summary>What a restore put back.</summary>
public sealed record RestoreSummary(string Database, int Files, long FileBytes, string Version, string CreatedAt);

/// <summary>
/// <c>covibe restore</c>: a backup into an empty data directory (and, for PostgreSQL, an empty database), refusing any other:
/// nothing of another server mixes in. The files first, the database last (<c>pg_restore --single-transaction</c>, or the
/// SQLite file renamed into place), so a failure part way (a full disk, a damaged or altered backup) leaves the target as
/// empty as it was. Paths are checked to stay inside the data directory; links are made after every file, so no file is
/// written through one.
/// </summary>
public sealed class BackupRestorer(IOptions<DatabaseOptions> database, IOptions<ServerOptions> server)
{
    public async Task<RestoreSummary> RestoreAsync(string backup, RSA? key, Action<string> say, CancellationToken cancellationToken)
    {
        var root = Path.GetFullPath(server.Value.DataDirectory);
        var postgres = database.Value.IsPostgres;
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
        {
            throw new BackupException($"The data directory {root} is not empty: a restore goes into an empty one, so nothing of another server mixes in. Give a new --data, or empty it first.");
        }
        if (postgres)
        {
            await EnsureEmptyAsync(cancellationToken);
        }
        if (!File.Exists(backup))
        {
            throw new BackupException($"There is no backup at {Path.GetFullPath(backup)}.");
        }
        ServerOptions.EnsureDirectory(root);
        var links = new List<(string Path, string Target)>();
        var (files, bytes) = (0, 0L);
        string? kind = null, version = null, created = null, dump = null, from = null;
        try
        {
            await using (var file = File.OpenRead(backup))
            await using (var content = BackupArchive.Read(file, key))
            await using (var tar = new TarReader(content))
            {
                say("Reading the backup…");
                while (await tar.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
                {
                    if (entry.Name == BackupArchive.Manifest)
                    {
                        using var manifest = await JsonDocument.ParseAsync(entry.DataStream!, cancellationToken: cancellationToken);
                        (kind, version, created) = (manifest.RootElement.GetProperty("database").GetString(), manifest.RootElement.GetProperty("version").GetString(),
                            manifest.RootElement.GetProperty("createdAt").GetString());
                        from = manifest.RootElement.GetProperty("dataDirectory").GetString();
                        if ((kind == "postgres") != postgres)
                        {
                            throw new BackupException(postgres
                                ? "This backup is of a server on SQLite: restore it without DATABASE_URL (into a data directory alone)."
                                : "This backup is of a server on PostgreSQL: give DATABASE_URL (an empty database) to restore it.");
                        }
                    }
                    else if (entry.Name is BackupArchive.SqliteDatabase or BackupArchive.PostgresDatabase)
                    {
                        if (kind is null)
                        {
                            throw new BackupException("The backup has no manifest before its database: it is damaged.");
                        }
                        dump = Path.Combine(root, ".restore-database");
                        await entry.ExtractToFileAsync(dump, overwrite: false, cancellationToken);
                    }
                    else if (entry.Name.StartsWith(BackupArchive.Data, StringComparison.Ordinal))
                    {
                        var path = Inside(root, entry.Name[BackupArchive.Data.Length..]);
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        if (entry.EntryType == TarEntryType.SymbolicLink)
                        {
                            links.Add((path, entry.LinkName));
                        }
                        else if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                        {
                            await entry.ExtractToFileAsync(path, overwrite: false, cancellationToken);
                            (files, bytes) = (files + 1, bytes + entry.Length);
                            if (files % 200 == 0)
                            {
                                say($"  {files} files, {bytes / 1048576.0:0.0} MiB…");
                            }
                        }
                    }
                }
            }
            if (kind is null || dump is null)
            {
                throw new BackupException("The backup has no manifest or no database: it is not complete.");
            }
            foreach (var (path, target) in links)
            {
                File.CreateSymbolicLink(path, target);
            }
            say(postgres ? "Restoring the PostgreSQL database (pg_restore)…" : "Putting the SQLite database in place…");
            if (postgres)
            {
                await PgRestoreAsync(dump, cancellationToken);
                File.Delete(dump);
            }
            else
            {
                File.Move(dump, Path.Combine(root, "covibe.db"));
            }
            if (from is not null && from != root)
            {
                await MoveRuntimeDirectoriesAsync(from, root, cancellationToken);
            }
            return new RestoreSummary(kind, files, bytes, version ?? "?", created ?? "?");
        }
        catch (Exception e) when (e is not BackupException)
        {
            Empty(root);
            throw new BackupException(e switch
            {
                CryptographicException => $"The backup could not be read: {e.Message} Nothing was restored.",
                InvalidDataException => $"{e.Message} Nothing was restored.",
                _ => $"The restore failed: {e.Message}. Nothing was restored; the data directory is empty again.",
            }, e);
        }
        catch
        {
            Empty(root);
            throw;
        }
    }

    /// <summary>The runtime directories stored under the backed-up server's data directory, moved under this one's (the logs went there).</summary>
    private async Task MoveRuntimeDirectoriesAsync(string from, string to, CancellationToken cancellationToken)
    {
        var cs = database.Value.ResolveConnectionString(server.Value.DataDirectory);
        await using System.Data.Common.DbConnection connection = database.Value.IsPostgres ? new NpgsqlConnection(cs) : new Microsoft.Data.Sqlite.SqliteConnection(cs);
        await connection.OpenAsync(cancellationToken);
        foreach (var table in new[] { "agents", "preview_deploys" })
        {
            await using var command = connection.CreateCommand();
            // Table names are this server's own; the paths go as parameters.
            command.CommandText = $"UPDATE {table} SET runtime_directory = @to || substr(runtime_directory, length(@from) + 1) WHERE substr(runtime_directory, 1, length(@from) + 1) = @from || '/'";
            foreach (var (name, value) in new[] { ("from", from), ("to", to) })
            {
                var parameter = command.CreateParameter();
                (parameter.ParameterName, parameter.Value) = ("@" + name, value);
                command.Parameters.Add(parameter);
            }
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary>Where a backed-up path goes: inside the data directory, or the backup is refused.</summary>
    private static string Inside(string root, string relative)
    {
        var parts = relative.Split('/');
        if (relative.Length == 0 || relative.StartsWith('/') || parts.Any(p => p is "" or "." or ".."))
        {
            throw new InvalidDataException($"The backup names a path outside the data directory ('{relative}'): it was not made by covibe backup.");
        }
        return Path.Combine(root, Path.Combine(parts));
    }

    private static void Empty(string root)
    {
        if (!Directory.Exists(root))
        {
            return;
        }
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo { LinkTarget: null } directory)
            {
                directory.Delete(recursive: true);
            }
            else
            {
                entry.Delete();
            }
        }
    }

    private async Task EnsureEmptyAsync(CancellationToken cancellationToken)
    {
        var cs = database.Value.ResolveConnectionString(server.Value.DataDirectory);
        await using var connection = new NpgsqlConnection(cs);
        try
        {
            await connection.OpenAsync(cancellationToken);
        }
        catch (NpgsqlException e)
        {
            throw new BackupException($"The database could not be reached: {e.Message} Create it first (createdb), empty.", e);
        }
        await using var command = new NpgsqlCommand("SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')", connection);
        if ((long)(await command.ExecuteScalarAsync(cancellationToken))! > 0)
        {
            throw new BackupException($"The database {connection.Database} already has tables: a restore goes into an empty database (createdb a new one), so nothing of another server mixes in.");
        }
    }

    /// <summary><c>pg_restore</c> in one transaction: all of it, or none.</summary>
    private async Task PgRestoreAsync(string dump, CancellationToken cancellationToken)
    {
        var cs = new NpgsqlConnectionStringBuilder(database.Value.ResolveConnectionString(server.Value.DataDirectory));
        var info = new ProcessStartInfo(PostgresTools.Find("pg_restore")) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--dbname", cs.Database ?? "", dump })
        {
            info.ArgumentList.Add(a);
        }
        PostgresTools.Connect(info, cs.ConnectionString);
        using var process = Process.Start(info)!;
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new IOException($"pg_restore failed: {(await errors).Trim()}");
        }
    }
}
