using Covibe.Server.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Data;

public static class DatabaseSetup
{
    public static IServiceCollection AddCovibeDatabase(this IServiceCollection services)
    {
        services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section)
            .Validate(o => o.HasKnownProvider, DatabaseOptions.ProviderProblem).ValidateOnStart();
        services.AddDbContextFactory<CovibeDb>((sp, options) =>
        {
            var db = sp.GetRequiredService<IOptions<DatabaseOptions>>().Value;
            Use(options, db.IsPostgres, db.ResolveConnectionString(sp.GetRequiredService<IOptions<ServerOptions>>().Value.DataDirectory));
        });
        return services;
    }

    /// <summary>
    /// The provider and its migrations (<see cref="ProviderMigrations"/>): the server's contexts, the design-time factory
    /// <c>dotnet ef</c> uses, and the tests are configured alike. A model changed without a migration makes EF refuse to
    /// migrate (its PendingModelChangesWarning is an error), and a test fails first.
    /// </summary>
    public static DbContextOptionsBuilder Use(DbContextOptionsBuilder options, bool postgres, string connectionString)
    {
        if (postgres)
        {
            options.UseNpgsql(connectionString);
        }
        else
        {
            options.UseSqlite(connectionString);
            options.AddInterceptors(SqliteBusyTimeout.Instance);
        }
        return options.ReplaceService<Microsoft.EntityFrameworkCore.Migrations.IMigrationsAssembly, ProviderMigrations>();
    }

    /// <summary>The advisory lock key nodes take while one of them migrates a PostgreSQL database ("covibe" in ASCII).</summary>
    private const long MigrationLock = 0x636f76696265;

    /// <summary>Creates or upgrades the schema. Runs before the server accepts connections.</summary>
    public static async Task MigrateDatabaseAsync(this IServiceProvider services, CancellationToken cancellationToken)
    {
        var factory = services.GetRequiredService<IDbContextFactory<CovibeDb>>();
        await using var db = await factory.CreateDbContextAsync(cancellationToken);
        if (db.Database.IsSqlite())
        {
            var builder = new SqliteConnectionStringBuilder(db.Database.GetConnectionString());
            if (!string.IsNullOrEmpty(builder.DataSource) && builder.DataSource != ":memory:")
            {
                ServerOptions.EnsureDirectory(Path.GetDirectoryName(Path.GetFullPath(builder.DataSource))!);
            }
        }
        if (db.Database.IsNpgsql())
        {
            // Several nodes may start at once on one database: one migrates, the others wait for it (a session-level
            // advisory lock on the connection the migration runs on), then find nothing left to do.
            await db.Database.OpenConnectionAsync(cancellationToken);
            await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_lock({MigrationLock})", cancellationToken);
            try
            {
                await db.Database.MigrateAsync(cancellationToken);
            }
            finally
            {
                await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_unlock({MigrationLock})", CancellationToken.None);
                await db.Database.CloseConnectionAsync();
            }
        }
        else
        {
            await db.Database.MigrateAsync(cancellationToken);
        }
        if (db.Database.IsSqlite())
        {
            // WAL lets readers (history, presence) run while a chat message is written.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }
    }

    internal static string ProviderName(this CovibeDb db) => db.Database.IsNpgsql() ? "postgres" : "sqlite";
}

/// <summary>
/// Lets SQLite itself wait for a write lock (its busy handler sleeps 1, 2, 5, 10... ms) instead of answering "busy" at
/// once: Microsoft.Data.Sqlite retries a busy command only every 150 ms, which put that much on a claim or a chat
/// message whenever two writers met (the box benchmark's claims showed it).
/// </summary>
internal sealed class SqliteBusyTimeout : DbConnectionInterceptor
{
    public static readonly SqliteBusyTimeout Instance = new();

    public override void ConnectionOpened(System.Data.Common.DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

    public override Task ConnectionOpenedAsync(System.Data.Common.DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Apply(connection);
        return Task.CompletedTask;
    }

    private static void Apply(System.Data.Common.DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA busy_timeout = 30000;";
        command.ExecuteNonQuery();
    }
}
