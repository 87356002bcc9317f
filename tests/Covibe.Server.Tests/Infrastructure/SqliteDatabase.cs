using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A migrated SQLite database in a temporary directory, for tests of one service without a server: its options, and a
/// context factory. Disposing deletes it.
/// </summary>
public sealed class SqliteDatabase : IAsyncDisposable
{
    private SqliteDatabase(string directory, DbContextOptions<CovibeDb> options) => (Directory, Options) = (directory, options);

    /// <summary>The temporary directory the database is in (for other files a test needs).</summary>
    public string Directory { get; }

    public DbContextOptions<CovibeDb> Options { get; }

    public IDbContextFactory<CovibeDb> Factory => new ContextFactory(Options);

    public static async Task<SqliteDatabase> CreateAsync(string name)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory($"covibe-{name}-").FullName;
        var builder = new DbContextOptionsBuilder<CovibeDb>();
        DatabaseSetup.Use(builder, postgres: false, $"Data Source={Path.Combine(directory, "covibe.db")}");
        var options = builder.Options;
        await using var db = new CovibeDb(options);
        await db.Database.MigrateAsync();
        return new SqliteDatabase(directory, options);
    }

    public ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        System.IO.Directory.Delete(Directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    private sealed class ContextFactory(DbContextOptions<CovibeDb> options) : IDbContextFactory<CovibeDb>
    {
        public CovibeDb CreateDbContext() => new(options);
    }
}
