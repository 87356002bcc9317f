using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// The model and each provider's migrations agree: a change to an entity or its mapping without `dotnet ef migrations add`
/// for both providers (docs/development.md, "Changing the schema") fails here, before any database is touched.
/// </summary>
public sealed class SchemaTests
{
    private static DbContextOptions<CovibeDb> Options(bool postgres, bool withAColumnMore = false)
    {
        var options = new DbContextOptionsBuilder<CovibeDb>();
        DatabaseSetup.Use(options, postgres, postgres ? "Host=127.0.0.1;Database=never_opened" : "Data Source=:memory:");
        if (withAColumnMore)
        {
            options.ReplaceService<IModelCustomizer, AColumnMore>();
        }
        return options.Options;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheModel_MatchesTheProvidersSnapshot_AndAModelChangeWithoutAMigrationIsCaught(bool postgres)
    {
        using (var db = new CovibeDb(Options(postgres)))
        {
            db.Database.HasPendingModelChanges().ShouldBeFalse(
                $"The model changed without a migration for {(postgres ? "PostgreSQL" : "SQLite")}: add one for each provider (docs/development.md, \"Changing the schema\").");
            // Its migrations are the hand-written ones both share, then its own, with its own snapshot.
            var migrations = db.GetService<Microsoft.EntityFrameworkCore.Migrations.IMigrationsAssembly>();
            migrations.ModelSnapshot!.GetType().Namespace.ShouldBe(postgres ? ProviderMigrations.Postgres : ProviderMigrations.Sqlite);
            migrations.Migrations.Keys.First().ShouldBe("20261122000100_Initial");
            migrations.Migrations.Values.ShouldAllBe(t => t.Namespace == ProviderMigrations.Shared || t.Namespace == migrations.ModelSnapshot.GetType().Namespace);
            migrations.Migrations.Keys.ShouldContain("20261207233853_Budgets");
        }
        // The check is not blind: one column more than the snapshot knows is a pending change.
        using var changed = new CovibeDb(Options(postgres, withAColumnMore: true));
        changed.Database.HasPendingModelChanges().ShouldBeTrue();
    }

    /// <summary>The model as it is, with one column more on the teams table.</summary>
    private sealed class AColumnMore(ModelCustomizerDependencies dependencies) : RelationalModelCustomizer(dependencies)
    {
        public override void Customize(ModelBuilder modelBuilder, DbContext context)
        {
            base.Customize(modelBuilder, context);
            modelBuilder.Entity<Team>().Property<string>("motto").HasColumnName("motto");
        }
    }
}

/// <summary>The schema the migrations build is the one EF would build from the model: tables, columns, keys and indexes.</summary>
public sealed class MigratedSchemaTests
{
    [Fact]
    public async Task OnSqlite_TheMigratedSchema_IsTheModelsSchema()
    {
        var migrated = await SchemaAsync(async db => await db.Database.MigrateAsync());
        var modelled = await SchemaAsync(async db => await db.Database.EnsureCreatedAsync());
        migrated.Except(modelled).ShouldBeEmpty("in the migrated schema only");
        modelled.Except(migrated).ShouldBeEmpty("in the model's schema only");
    }

    private static async Task<List<string>> SchemaAsync(Func<CovibeDb, Task> build)
    {
        var connection = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=:memory:");
        await connection.OpenAsync();
        var options = new DbContextOptionsBuilder<CovibeDb>();
        DatabaseSetup.Use(options, postgres: false, "Data Source=:memory:").UseSqlite(connection);
        await using var db = new CovibeDb(options.Options);
        await build(db);
        var facts = new List<string>();
        var tables = await db.Database.SqlQueryRaw<string>("SELECT name AS \"Value\" FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND substr(name, 1, 4) <> '__EF'").ToListAsync();
        foreach (var table in tables)
        {
            facts.AddRange(await db.Database.SqlQuery<string>(
                $"SELECT {table} || '.' || name || ' ' || type || CASE WHEN \"notnull\" THEN ' not null' ELSE '' END || CASE WHEN pk > 0 THEN ' pk' || pk ELSE '' END AS \"Value\" FROM pragma_table_info({table})").ToListAsync());
            facts.AddRange(await db.Database.SqlQuery<string>(
                $"SELECT {table} || ' index ' || l.name || CASE WHEN l.\"unique\" THEN ' unique' ELSE '' END || ' (' || (SELECT group_concat(i.name) FROM pragma_index_info(l.name) i) || ')' AS \"Value\" FROM pragma_index_list({table}) l WHERE l.origin = 'c'").ToListAsync());
            facts.AddRange(await db.Database.SqlQuery<string>(
                $"SELECT {table} || ' fk ' || \"from\" || ' -> ' || \"table\" || '.' || \"to\" || ' ' || on_delete AS \"Value\" FROM pragma_foreign_key_list({table})").ToListAsync());
        }
        await connection.DisposeAsync();
        return facts;
    }
}
