using System.Collections.Concurrent;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Cluster;
using Covibe.Server.Features.Events;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Covibe.Server.Tests;

/// <summary>
/// An agent's status as the team is told it: always as stored, one change at a time. A page keeps the last status it
/// was told, so one told out of order (an approval's recount holding the agent as it was just before it ended) showed
/// a finished agent running until a reload.
/// </summary>
public sealed class AgentEventsTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("covibe-agent-events-").FullName;
    private readonly RecordingEvents _told = new();
    private DbContextOptions<CovibeDb> _options = null!;
    private AgentEvents _events = null!;

    public async Task InitializeAsync()
    {
        _options = new DbContextOptionsBuilder<CovibeDb>()
            .UseSqlite($"Data Source={Path.Combine(_directory, "covibe.db")}")
            .ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.RelationalEventId.PendingModelChangesWarning))
            .Options;
        await using var db = new CovibeDb(_options);
        await db.Database.MigrateAsync();
        db.Teams.Add(new Team { Id = "team", Name = "Team", OwnerId = "sarah" });
        db.Users.Add(new User { Id = "sarah", TeamId = "team", Email = "sarah@example.com", Name = "Sarah", PasswordHash = "-" });
        db.Agents.Add(new Agent { Id = "agent", TeamId = "team", UserId = "sarah", Type = "claude", Task = "Fix it", Status = AgentStatuses.Running, Backend = "local", WorkingDirectory = _directory });
        await db.SaveChangesAsync();
        var dbs = new Factory(_options);
        var feeds = new AgentFeeds();
        _events = new AgentEvents(dbs, _told, feeds, new AgentControl(dbs, feeds, new LocalClusterSignals(), NullLogger<AgentControl>.Instance));
    }

    public Task DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task ACallerHoldingAnOlderCopy_TellsTheAgentAsItIsStored()
    {
        var older = await ReadAsync();
        await SetStatusAsync(AgentStatuses.Completed);
        await _events.StatusChangedAsync(older, CancellationToken.None);
        _told.Statuses.ShouldBe([AgentStatuses.Completed]);
        _told.Owners.ShouldBe(["Sarah"]);
    }

    [Fact]
    public async Task AChangeStoredWhileAnotherIsBeingTold_IsToldAfterIt()
    {
        // The first change is held between reading the agent ("running") and telling the team.
        var gate = _told.Hold();
        var first = Task.Run(async () => await _events.StatusChangedAsync(await ReadAsync(), CancellationToken.None));
        await _told.Held.WaitAsync(TimeSpan.FromSeconds(20));

        // The agent ends meanwhile: its change waits for the first to be told (told at once, the first would follow it).
        await SetStatusAsync(AgentStatuses.Completed);
        var second = _events.StatusChangedAsync(await ReadAsync(), CancellationToken.None);
        (await Task.WhenAny(second, Task.Delay(TimeSpan.FromSeconds(1)))).ShouldNotBe(second, "told while an earlier change was being told");
        gate.Set();
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(20));
        _told.Statuses.ShouldBe([AgentStatuses.Running, AgentStatuses.Completed], "the team's last word is the agent's last status");
    }

    private async Task<Agent> ReadAsync()
    {
        await using var db = new CovibeDb(_options);
        return await db.Agents.AsNoTracking().SingleAsync(a => a.Id == "agent");
    }

    private async Task SetStatusAsync(string status)
    {
        await using var db = new CovibeDb(_options);
        await db.Agents.Where(a => a.Id == "agent").ExecuteUpdateAsync(s => s.SetProperty(a => a.Status, status));
    }

    private sealed class Factory(DbContextOptions<CovibeDb> options) : IDbContextFactory<CovibeDb>
    {
        public CovibeDb CreateDbContext() => new(options);
    }

    /// <summary>What the team was told, in order; <see cref="Hold"/> stops the next telling until its gate is set.</summary>
    private sealed class RecordingEvents : ITeamEvents
    {
        private readonly ConcurrentQueue<AgentStatusMessage> _told = new();
        private ManualResetEventSlim? _gate;

        public SemaphoreSlim Held { get; } = new(0);

        public string[] Statuses => [.. _told.Select(m => m.Status)];

        public string[] Owners => [.. _told.Select(m => m.Agent.OwnerName)];

        public ManualResetEventSlim Hold() => _gate = new ManualResetEventSlim();

        public void Publish<T>(string teamId, T message) where T : HubMessage => throw new InvalidOperationException("Status is told to controllers and watchers apart.");

        public void Publish<T>(string teamId, IReadOnlyCollection<string> who, Func<bool, T> build) where T : HubMessage
        {
            if (Interlocked.Exchange(ref _gate, null) is { } gate)
            {
                Held.Release();
                gate.Wait(TimeSpan.FromSeconds(20)).ShouldBeTrue();
            }
            _told.Enqueue((build(false) as AgentStatusMessage)!);
        }
    }
}
