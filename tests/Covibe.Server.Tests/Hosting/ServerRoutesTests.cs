using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>What the server answers beside the features: its OpenAPI description, and a problem for an unknown route. Runs on SQLite and on PostgreSQL.</summary>
public abstract class ServerRoutesTests
{
    protected abstract Task<TestServer> ServerAsync();

    [Fact]
    public async Task OpenApi_DocumentListsTheSeedRoutes()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        var document = await client.GetStringAsync("/openapi/v1.json");
        foreach (var route in new[] { "/api/auth/login", "/api/auth/refresh", "/api/team/create", "/api/team/invite", "/api/chat/message", "/api/chat/history" })
        {
            document.ShouldContain($"\"{route}\"");
        }
    }

    [Fact]
    public async Task UnknownRoute_ReturnsNotFoundProblem()
    {
        var server = await ServerAsync();
        using var client = server.Client();
        using var reply = await client.GetAsync("/api/nothing-here");
        reply.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        reply.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
    }
}

public sealed class SqliteServerRoutesTests(SqliteServerFixture fixture) : ServerRoutesTests, IClassFixture<SqliteServerFixture>
{
    protected override Task<TestServer> ServerAsync() => Task.FromResult(fixture.Server);
}

[Collection(PostgresGroup.Name)]
public sealed class PostgresServerRoutesTests(PostgresServer postgres) : ServerRoutesTests
{
    protected override Task<TestServer> ServerAsync() => postgres.SharedServerAsync();
}
