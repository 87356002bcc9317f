using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Covibe.Design;

/// <summary>
/// The <see cref="CovibeDb"/> that <c>dotnet ef</c> compares with a provider's snapshot: <c>-- --provider sqlite</c> (the
/// default) or <c>-- --provider postgres</c>. Nothing connects to a database: adding a migration needs only the model.
/// </summary>
public sealed class DesignTimeDb : IDesignTimeDbContextFactory<CovibeDb>
{
    public CovibeDb CreateDbContext(string[] args)
    {
        var at = Array.IndexOf(args, "--provider");
        var provider = at >= 0 && at + 1 < args.Length ? args[at + 1] : "sqlite";
        if (provider is not ("sqlite" or "postgres"))
        {
            throw new ArgumentException($"--provider must be sqlite or postgres, not '{provider}'.", nameof(args));
        }
        var options = new DbContextOptionsBuilder<CovibeDb>();
        DatabaseSetup.Use(options, provider == "postgres", provider == "postgres" ? "Host=localhost;Database=covibe_design" : "Data Source=:memory:");
        return new CovibeDb(options.Options);
    }
}
