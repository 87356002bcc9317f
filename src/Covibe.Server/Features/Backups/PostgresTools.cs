using System.Diagnostics;
using Npgsql;

namespace Covibe.Server.Features.Backups;

/// <summary>PostgreSQL's own client programs (<c>pg_dump</c>, <c>pg_restore</c>), told where to connect through libpq's environment.</summary>
internal static class PostgresTools
{
    /// <summary>The program on the PATH, else the newest under <c>/usr/lib/postgresql/*/bin</c> (Debian's layout).</summary>
    public static string Find(string tool)
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin", tool)).FirstOrDefault(File.Exists)
            : null;
        // Debian's own, when there, matches the newest server installed; the PATH's may be a wrapper for another version.
        return debian ?? onPath ?? throw new BackupException($"{tool} is not installed: install PostgreSQL's client programs (apt install postgresql-client).");
    }

    /// <summary>Where to connect, from the server's connection string: host, port, user, database, and the password in PGPASSWORD.</summary>
    public static void Connect(ProcessStartInfo info, string connectionString)
    {
        var cs = new NpgsqlConnectionStringBuilder(connectionString);
        info.Environment["PGHOST"] = cs.Host ?? "localhost";
        info.Environment["PGPORT"] = cs.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["PGDATABASE"] = cs.Database ?? "";
        if (cs.Username is { } user)
        {
            info.Environment["PGUSER"] = user;
        }
        if (cs.Password is { } password)
        {
            info.Environment["PGPASSWORD"] = password;
        }
        info.Environment["PGCONNECT_TIMEOUT"] = "15";
    }
}
