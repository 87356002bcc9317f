using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Events;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Tests;

public sealed class AgentActionsTests : IAsyncLifetime
{
    private SqliteDatabase _database = null!;

    public async Task InitializeAsync() => _database = await SqliteDatabase.CreateAsync("actions");

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task WatchersSubscribingAtOnce_ShareOneRead_AndOneWhoGivesUpLeavesTheOthersTheirAnswer()
    {
        // When an agent starts, every member following the team subscribes from its start at once: one read, not one each.
        var dbs = new GatedFactory(_database.Options);
        var actions = new AgentActions(dbs, new AgentFeeds(), new NoEvents(), TimeProvider.System);
        using var gaveUp = new CancellationTokenSource();
        var impatient = actions.FromAsync("agent", 0, gaveUp.Token);
        var watchers = Enumerable.Range(0, 100).Select(_ => actions.FromAsync("agent", 0, CancellationToken.None)).ToList();
        var elsewhere = actions.FromAsync("agent", 500, CancellationToken.None);
        await gaveUp.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(impatient);
        dbs.Open.Release(2);

        // Two reads let through answer all 101 (with a read each, the others would wait for ever).
        (await Task.WhenAll(watchers).WaitAsync(TimeSpan.FromSeconds(20))).ShouldAllBe(found => found.Length == 0);
        (await elsewhere.WaitAsync(TimeSpan.FromSeconds(20))).ShouldBeEmpty();
        dbs.Created.ShouldBe(2, "one read for position 0, one for 500");

        // Once answered, the next asks again (an action recorded since is in the database).
        dbs.Open.Release();
        (await actions.FromAsync("agent", 0, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20))).ShouldBeEmpty();
        dbs.Created.ShouldBe(3);
    }

    /// <summary>Counts the contexts made; each waits to be let through.</summary>
    private sealed class GatedFactory(DbContextOptions<CovibeDb> options) : IDbContextFactory<CovibeDb>
    {
        public SemaphoreSlim Open { get; } = new(0);

        public int Created;

        public CovibeDb CreateDbContext() => throw new InvalidOperationException("Only asynchronously.");

        public async Task<CovibeDb> CreateDbContextAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Created);
            await Open.WaitAsync(cancellationToken);
            return new CovibeDb(options);
        }
    }

    private sealed class NoEvents : ITeamEvents
    {
        public void Publish<T>(string teamId, T message) where T : HubMessage
        {
        }

        public void Publish<T>(string teamId, IReadOnlyCollection<string> who, Func<bool, T> build) where T : HubMessage
        {
        }
    }
}
