using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using Covibe.Server.Data;
using Covibe.Server.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Backups;

/// <summary>What a backup holds, told when it is done.</summary>
public sealed record BackupSummary(string Path, long Bytes, string Database, int Files, long FileBytes, bool Encrypted);

/// <summary>A backup or a restore that could not be made, in words for the operator (nothing half-made is left).</summary>
public sealed class BackupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// <c>covibe backup</c> (issue 29): a consistent archive of a server while it runs. The database first (SQLite's online
/// backup, or <c>pg_dump</c>), then the data directory's files as they are then (a log that grows meanwhile is taken up to
/// the length it had, so the archive holds at least what the database points at): agents' logs, previews' and boxes'
/// state, runners' mirrors, and the development keys when the server made them. Not taken: agents' work trees and the
/// sandbox's scratch (<see cref="Skipped"/>). Written beside the target under a temporary name and renamed when complete,
/// so a failure (a full disk) leaves nothing, and the server is never touched.
/// </summary>
public sealed class BackupWriter(IOptions<DatabaseOptions> database, IOptions<ServerOptions> server, TimeProvider time)
{
    /// <summary>Top-level entries of the data directory that are not backed up: the live database (taken by its own means), work trees, scratch.</summary>
    public static readonly string[] Skipped = ["covibe.db", "covibe.db-wal", "covibe.db-shm", "workspaces", "sandbox", "changes", "boxes/.devcontainer-home", "boxes/.bin"];

    public async Task<BackupSummary> CreateAsync(string output, RSA? recipient, Action<string> say, CancellationToken cancellationToken)
    {
        var target = Path.GetFullPath(output);
        if (File.Exists(target) || Directory.Exists(target))
        {
            throw new BackupException($"{target} exists already: a backup never replaces a file; give a new name.");
        }
        var directory = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(directory))
        {
            throw new BackupException($"{directory} does not exist: make it first, or give another place.");
        }
        var root = Path.GetFullPath(server.Value.DataDirectory);
        if ((directory + "/").StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal))
        {
            throw new BackupException($"{target} is inside the data directory {root}: write the backup somewhere else (another disk is best).");
        }
        var partial = Path.Combine(directory, $".{Path.GetFileName(target)}.{Tokens.NewId()[..8]}.partial");
        var dump = partial + ".database";
        var postgres = database.Value.IsPostgres;
        var (files, bytes) = (0, 0L);
        try
        {
            await using (var file = new FileStream(partial, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite, // it holds the team's secrets, sealed or not
                BufferSize = 1 << 16,
            }))
            {
                await using (var archive = BackupArchive.Open(file, recipient))
                await using (var tar = new TarWriter(archive, TarEntryFormat.Pax, leaveOpen: true))
                {
                    await WriteManifestAsync(tar, postgres, recipient is not null, cancellationToken);
                    say(postgres ? "Dumping the PostgreSQL database (pg_dump)…" : "Copying the SQLite database (online backup)…");
                    if (postgres)
                    {
                        await PgDumpAsync(dump, cancellationToken);
                    }
                    else
                    {
                        CopySqlite(dump);
                    }
                    await WriteFileAsync(tar, postgres ? BackupArchive.PostgresDatabase : BackupArchive.SqliteDatabase, dump, cancellationToken);
                    File.Delete(dump);
                    say($"Copying the data directory {root}…");
                    if (Directory.Exists(root))
                    {
                        foreach (var (path, relative) in Walk(root, ""))
                        {
                            cancellationToken.ThrowIfCancellationRequested();
                            var taken = await WriteFileAsync(tar, BackupArchive.Data + relative, path, cancellationToken);
                            if (taken >= 0)
                            {
                                (files, bytes) = (files + 1, bytes + taken);
                                if (files % 200 == 0)
                                {
                                    say($"  {files} files, {bytes / 1048576.0:0.0} MiB…");
                                }
                            }
                        }
                    }
                }
                await file.FlushAsync(cancellationToken);
                file.Flush(flushToDisk: true);
            }
            File.Move(partial, target);
            return new BackupSummary(target, new FileInfo(target).Length, postgres ? "postgres" : "sqlite", files, bytes, recipient is not null);
        }
        catch (Exception e) when (e is IOException or SqliteException or UnauthorizedAccessException)
        {
            // SQLite says SQLITE_FULL in its own words; the operator looks for the system's.
            var why = e is SqliteException { SqliteErrorCode: 13 } ? $"No space left on device in {directory}" : e.Message.TrimEnd('.');
            throw new BackupException($"The backup could not be made: {why}. Nothing was kept, and the server was not touched.", e);
        }
        finally
        {
            File.Delete(partial);
            File.Delete(dump);
        }
    }

    private async Task WriteManifestAsync(TarWriter tar, bool postgres, bool encrypted, CancellationToken cancellationToken)
    {
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["format"] = 1,
            ["version"] = ServerVersion.Value,
            ["createdAt"] = time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["database"] = postgres ? "postgres" : "sqlite",
            // Agents' and previews' runtime directories are stored whole: a restore elsewhere moves them under its own.
            ["dataDirectory"] = Path.GetFullPath(server.Value.DataDirectory),
            ["encrypted"] = encrypted,
        });
        await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, BackupArchive.Manifest) { DataStream = new MemoryStream(manifest) }, cancellationToken);
    }

    /// <summary>SQLite's online backup: a consistent copy while the server writes (under WAL, readers and the writer go on).</summary>
    private void CopySqlite(string to)
    {
        using var source = new SqliteConnection(database.Value.ResolveConnectionString(server.Value.DataDirectory) + ";Mode=ReadOnly");
        source.Open();
        using var copy = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = to, Pooling = false }.ConnectionString);
        copy.Open();
        source.BackupDatabase(copy);
    }

    /// <summary><c>pg_dump -Fc</c>; the password goes in its environment, never on its command line.</summary>
    private async Task PgDumpAsync(string to, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(PostgresTools.Find("pg_dump")) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "--format=custom", "--no-owner", "--no-privileges", "--file", to })
        {
            info.ArgumentList.Add(a);
        }
        PostgresTools.Connect(info, database.Value.ResolveConnectionString(server.Value.DataDirectory));
        using var process = Process.Start(info)!;
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            var why = (await errors).Trim();
            throw why.Contains("No space left", StringComparison.Ordinal)
                ? new IOException(why)
                : new BackupException($"pg_dump could not dump the database: {why}");
        }
    }

    /// <summary>The data directory's files and symbolic links, depth first, without what <see cref="Skipped"/> names.</summary>
    private static IEnumerable<(string Path, string Relative)> Walk(string directory, string prefix)
    {
        foreach (var entry in Listing(directory))
        {
            var relative = prefix + entry.Name;
            if (Skipped.Contains(relative, StringComparer.Ordinal))
            {
                continue;
            }
            if (entry is DirectoryInfo && entry.LinkTarget is null)
            {
                foreach (var inner in Walk(entry.FullName, relative + "/"))
                {
                    yield return inner;
                }
            }
            else
            {
                yield return (entry.FullName, relative);
            }
        }
    }

    /// <summary>A directory's entries in name order; none when it went away since its parent was listed (a live server tidies up).</summary>
    private static List<FileSystemInfo> Listing(string directory)
    {
        try
        {
            return [.. new DirectoryInfo(directory).EnumerateFileSystemInfos("*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = false })
                .OrderBy(e => e.Name, StringComparer.Ordinal)];
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    /// <summary>
    /// One file into the archive (a symbolic link as itself), at the length it has now; answers its bytes, or -1 for what is
    /// not a file (a FIFO or a socket of a running agent: made again when it runs).
    /// </summary>
    private static async Task<long> WriteFileAsync(TarWriter tar, string name, string path, CancellationToken cancellationToken)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is { } link)
        {
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = link }, cancellationToken);
            return 0;
        }
        await using var stream = Covibe.Execution.RegularFile.OpenForReading(path);
        if (stream is null)
        {
            return -1;
        }
        var length = stream.Length;
        await tar.WriteEntryAsync(BackupArchive.FileEntry(name, stream, length, info.UnixFileMode, info.LastWriteTimeUtc), cancellationToken);
        return length;
    }
}
