namespace Covibe.Server.Tests.Infrastructure;

/// <summary>One SQLite server per test class; tests isolate themselves by creating their own teams.</summary>
public sealed class SqliteServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Which server a storage-dependent suite runs against.</summary>
public interface IServerSource
{
    Task<TestServer> ServerAsync();
}
