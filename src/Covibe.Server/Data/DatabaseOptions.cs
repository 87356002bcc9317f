using Npgsql;

namespace Covibe.Server.Data;

/// <summary>
/// <c>Covibe:Database</c>. Nothing set: SQLite in the data directory. <c>DATABASE_URL</c>
/// (<c>postgresql://user:pass@host:port/db</c>, as Prisma takes it in the seeds) or a Npgsql
/// connection string (<c>Host=...;Database=...</c>) selects PostgreSQL.
/// </summary>
public sealed class DatabaseOptions
{
    public const string Section = "Covibe:Database";

    /// <summary><c>sqlite</c> or <c>postgres</c>; inferred from the connection string when empty.</summary>
    public string? Provider { get; set; }

    public string? ConnectionString { get; set; }

    /// <summary>Start-up refuses any other provider, naming the setting.</summary>
    internal const string ProviderProblem = "Covibe:Database:Provider must be 'sqlite' or 'postgres'.";

    internal bool HasKnownProvider => Provider is null or "" or "sqlite" or "postgres";

    internal bool IsPostgres => Provider == "postgres"
        || (string.IsNullOrEmpty(Provider) && ConnectionString is { } cs && LooksLikePostgres(cs));

    internal string ResolveConnectionString(string dataDirectory)
    {
        if (!IsPostgres)
        {
            return string.IsNullOrWhiteSpace(ConnectionString)
                ? $"Data Source={Path.Combine(dataDirectory, "covibe.db")}"
                : ConnectionString;
        }
        var cs = ConnectionString ?? throw new InvalidOperationException("Covibe:Database:ConnectionString (or DATABASE_URL) is required for PostgreSQL.");
        return cs.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || cs.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
            ? FromUrl(cs)
            : cs;
    }

    private static bool LooksLikePostgres(string cs) =>
        cs.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
        || cs.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
        || cs.Contains("Host=", StringComparison.OrdinalIgnoreCase);

    private static string FromUrl(string url)
    {
        var uri = new Uri(url);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.Port > 0 ? uri.Port : 5432,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                builder.Password = Uri.UnescapeDataString(parts[1]);
            }
        }
        return builder.ConnectionString;
    }
}
