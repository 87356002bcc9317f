using System.Reflection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data;

/// <summary>
/// The migrations of the provider in use, for EF's migrator and for <c>dotnet ef</c> (docs/development.md, "Changing the
/// schema"): the provider-neutral ones written by hand before dotnet-ef (namespace <see cref="Shared"/>, applied by both),
/// then the ones dotnet-ef generated for this provider, with its model snapshot (<c>Data/Migrations/Sqlite</c> or
/// <c>Data/Migrations/Postgres</c>). One context type, one history table; each provider compares the model with its own
/// snapshot, so a model change without a migration shows on both (<see cref="RelationalDatabaseFacadeExtensions.HasPendingModelChanges"/>).
/// </summary>
public sealed class ProviderMigrations(ICurrentDbContext current, IMigrationsIdGenerator ids) : IMigrationsAssembly
{
    public const string Shared = "Covibe.Server.Data.Migrations";
    public const string Sqlite = Shared + ".Sqlite";
    public const string Postgres = Shared + ".Postgres";

    private IReadOnlyDictionary<string, TypeInfo>? _migrations;
    private ModelSnapshot? _snapshot;
    private bool _snapshotRead;

    public Assembly Assembly => typeof(CovibeDb).Assembly;

    /// <summary>The namespace of the provider's own migrations and snapshot.</summary>
    public string Namespace => current.Context.Database.IsNpgsql() ? Postgres : Sqlite;

    public IReadOnlyDictionary<string, TypeInfo> Migrations => _migrations ??= new SortedDictionary<string, TypeInfo>(
        Assembly.DefinedTypes
            .Where(t => t.IsSubclassOf(typeof(Migration)) && !t.IsAbstract && (t.Namespace == Shared || t.Namespace == Namespace))
            .Select(t => (Id: t.GetCustomAttribute<MigrationAttribute>()?.Id, Type: t))
            .Where(m => m.Id is not null)
            .ToDictionary(m => m.Id!, m => m.Type, StringComparer.Ordinal),
        StringComparer.Ordinal);

    public ModelSnapshot? ModelSnapshot
    {
        get
        {
            if (!_snapshotRead)
            {
                _snapshot = Assembly.DefinedTypes
                    .Where(t => t.IsSubclassOf(typeof(ModelSnapshot)) && !t.IsAbstract && t.Namespace == Namespace)
                    .Select(t => (ModelSnapshot)Activator.CreateInstance(t.AsType())!)
                    .SingleOrDefault();
                _snapshotRead = true;
            }
            return _snapshot;
        }
    }

    public string? FindMigrationId(string nameOrId) => Migrations.Keys.FirstOrDefault(ids.IsValidId(nameOrId)
        ? id => string.Equals(id, nameOrId, StringComparison.OrdinalIgnoreCase)
        : id => string.Equals(ids.GetName(id), nameOrId, StringComparison.OrdinalIgnoreCase));

    public Migration CreateMigration(TypeInfo migrationClass, string activeProvider)
    {
        var migration = (Migration)Activator.CreateInstance(migrationClass.AsType())!;
        migration.ActiveProvider = activeProvider;
        return migration;
    }
}
