using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>GET /health in the seed's shape. Runs on SQLite and on PostgreSQL.</summary>
public abstract class HealthApiTests
{
    protected abstract Task<TestServer> ServerAsync();

    [Fact]
    public async Task Health_ReportsRunningInTheSeedShape()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        var health = (await client.GetFromJsonAsync<HealthResponse>("/health"))!;
        health.Status.ShouldBe("running");
        health.Version.ShouldNotBeNullOrEmpty();
        health.Uptime.ShouldBeGreaterThanOrEqualTo(0);
    }
}

public sealed class SqliteHealthApiTests(SqliteServerFixture fixture) : HealthApiTests, IClassFixture<SqliteServerFixture>
{
    protected override Task<TestServer> ServerAsync() => Task.FromResult(fixture.Server);
}

[Collection(PostgresGroup.Name)]
public sealed class PostgresHealthApiTests(PostgresServer postgres) : HealthApiTests
{
    protected override Task<TestServer> ServerAsync() => postgres.SharedServerAsync();
}
