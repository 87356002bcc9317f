using System.Collections.Concurrent;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Cluster;
using Covibe.Server.Features.Events;
using Covibe.Server.Tests.Infrastructure;
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
    private readonly RecordingEvents _told = new();
    private SqliteDatabase _database = null!;
    private AgentEvents _events = null!;

    public async Task InitializeAsync()
    {
        _database = await SqliteDatabase.CreateAsync("agent-events");
        await using var db = new CovibeDb(_database.Options);
        db.Teams.Add(new Team { Id = "team", Name = "Team", OwnerId = "sarah" });
        db.Users.Add(new User { Id = "sarah", TeamId = "team", Email = "sarah@example.com", Name = "Sarah", PasswordHash = "-" });
        db.Agents.Add(new Agent { Id = "agent", TeamId = "team", UserId = "sarah", Type = "claude", Task = "Fix it", Status = AgentStatuses.Running, Backend = "local", WorkingDirectory = _database.Directory });
        await db.SaveChangesAsync();
        var feeds = new AgentFeeds();
        _events = new AgentEvents(_database.Factory, _told, feeds, new AgentControl(_database.Factory, feeds, new LocalClusterSignals(), NullLogger<AgentControl>.Instance));
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

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
        await using var db = new CovibeDb(_database.Options);
        return await db.Agents.AsNoTracking().SingleAsync(a => a.Id == "agent");
    }

    private async Task SetStatusAsync(string status)
    {
        await using var db = new CovibeDb(_database.Options);
        await db.Agents.Where(a => a.Id == "agent").ExecuteUpdateAsync(s => s.SetProperty(a => a.Status, status));
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
