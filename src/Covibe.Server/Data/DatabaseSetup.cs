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
        services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddDbContextFactory<CovibeDb>((sp, options) =>
        {
            var db = sp.GetRequiredService<IOptions<DatabaseOptions>>().Value;
            var connectionString = db.ResolveConnectionString(sp.GetRequiredService<IOptions<ServerOptions>>().Value.DataDirectory);
            if (db.IsPostgres)
            {
                options.UseNpgsql(connectionString);
            }
            else
            {
                options.UseSqlite(connectionString);
            }
            // The schema is written by hand (no design-time tools here), so there is no model
            // snapshot to compare with; the test suite proves the migrations match the model.
            options.ConfigureWarnings(w => w.Ignore(RelationalEventId.PendingModelChangesWarning));
        });
        return services;
    }

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
        await db.Database.MigrateAsync(cancellationToken);
        if (db.Database.IsSqlite())
        {
            // WAL lets readers (history, presence) run while a chat message is written.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }
    }

    internal static string ProviderName(this CovibeDb db) => db.Database.IsNpgsql() ? "postgres" : "sqlite";
}
