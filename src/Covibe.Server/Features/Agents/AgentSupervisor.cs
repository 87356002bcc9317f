using System.Threading.Channels;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Web;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Follows the agents this node holds the lease of (<see cref="AgentLeases"/>): reads each one's output log into its
/// <see cref="AgentFeed"/> (and through <see cref="IAgentOutputRelay"/> to the other nodes), records what it reports and
/// how it ends. Every <see cref="AgentLeases.Interval"/> it renews its leases and takes up unfinished agents nobody
/// follows: those a previous run of this node left (at once: its id is the same), or a dead node's once its lease ran out.
/// It re-reads their logs from the start, so a restart or a takeover loses nothing and a client resumes from any position.
/// </summary>
public sealed partial class AgentSupervisor(
    IDbContextFactory<CovibeDb> dbs,
    AgentFeeds streams,
    ExecutionBackends backends,
    AgentLauncher launcher,
    AgentEvents events,
    AgentLeases leases,
    IAgentOutputRelay relay,
    AgentPrompts prompts,
    FileChanges fileChanges,
    AgentMetrics metrics,
    AgentBudgets budgets,
    IOptions<AgentsOptions> options,
    TimeProvider time,
    ILogger<AgentSupervisor> logger) : BackgroundService
{
    private const int ReadSize = 64 * 1024;
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(200);
    private readonly Channel<(string Id, bool Unfollowed)> _watch = Channel.CreateUnbounded<(string, bool)>();
    private readonly Dictionary<string, DateTime> _killDeadlines = [];
    private readonly Lock _killLock = new();
    /// <summary>The agents followed here.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Following> _following = new();

    /// <summary>Starts following an agent that was just launched.</summary>
    public void Watch(string agentId) => _watch.Writer.TryWrite((agentId, false));

    /// <summary>Whether this node follows the agent now.</summary>
    public bool Follows(string agentId) => _following.ContainsKey(agentId);

    /// <summary>Escalates to SIGKILL if the agent is still running after the grace period.</summary>
    public void KillRequested(string agentId)
    {
        lock (_killLock)
        {
            _killDeadlines[agentId] = time.GetUtcNow().UtcDateTime.AddSeconds(options.Value.KillGraceSeconds);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var loops = new List<Task>();
        var tending = TendAsync(stoppingToken);
        try
        {
            await foreach (var (id, unfollowed) in _watch.Reader.ReadAllAsync(stoppingToken))
            {
                loops.RemoveAll(t => t.IsCompleted);
                if (!_following.ContainsKey(id))
                {
                    loops.Add(FollowAsync(id, unfollowed, stoppingToken));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        await Task.WhenAll([.. loops, tending]);
    }

    private async Task FollowAsync(string agentId, bool unfollowed, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var following = new Following(stop);
        if (!_following.TryAdd(agentId, following))
        {
            return;
        }
        try
        {
            await FollowCoreAsync(agentId, following, unfollowed, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Server shutting down, or another node follows it now: the agent keeps running.
        }
        catch (Exception e)
        {
            AgentsLog.FollowFailed(logger, agentId, e);
        }
        finally
        {
            _following.TryRemove(agentId, out _);
            metrics.Unfollowed(agentId);
        }
    }

    private async Task FollowCoreAsync(string agentId, Following following, bool unfollowed, CancellationToken cancellationToken)
    {
        Agent agent;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            agent = await db.Agents.AsNoTracking().SingleAsync(a => a.Id == agentId, cancellationToken);
        }
        if (agent.Process is not { } process || AgentStatuses.IsFinal(agent.Status))
        {
            return;
        }
        var backend = backends.Get(agent.Backend);
        // Only the node that can reach the agent follows it, and only one node at a time.
        if (!await backend.CanFollowAsync(process, cancellationToken) || !await leases.TakeAsync(agentId, cancellationToken))
        {
            return;
        }
        following.Since = time.GetUtcNow().UtcDateTime;
        following.Where = (backend, process);
        metrics.Following(agentId, agent.Backend, agent.TeamId);
        if (unfollowed)
        {
            AgentsLog.Recovering(logger, agentId);
        }
        var stream = streams.Open(agent, options.Value.RingBytes);
        var parser = new LineParser();
        var buffer = new byte[ReadSize + 4];
        var carry = 0;
        long readOffset = 0;
        long appended = 0;
        var status = agent.Status;
        var nextProbe = DateTime.MinValue;
        var batch = TimeSpan.FromMilliseconds(options.Value.BatchMilliseconds);
        var poll = TimeSpan.FromMilliseconds(options.Value.PollMilliseconds);
        long lastPublished = 0;
        // A log on this machine wakes us when written; a remote one is polled.
        using var watch = backend.LocalLogPath(process) is { } logPath ? fileChanges.Watch(logPath) : null;
        if (agent.KillRequested)
        {
            KillRequested(agent.Id);
        }

        while (true)
        {
            var n = await backend.ReadOutputAsync(process, readOffset, buffer.AsMemory(carry, ReadSize), cancellationToken);
            if (n > 0)
            {
                readOffset += n;
                carry = Publish(stream, parser, buffer, carry + n, ref appended, final: false, out var sawResult);
                lastPublished = time.GetTimestamp();
                if (parser.TakePrompts() is { Length: > 0 } asked)
                {
                    prompts.Seen(new PromptBatch(agent.Id, backend, process, asked));
                }
                if (sawResult)
                {
                    var conversational = launcher.IsConversational(agent.Type);
                    if (!conversational && launcher.IsStreamJson(agent.Type))
                    {
                        // One turn: its input stays open while it may ask the team, and closes with its result, so it ends.
                        await CloseInputAsync(agent.Id, backend, process, cancellationToken);
                    }
                    double? spentBefore = null;
                    var recorded = await UpdateAsync(agent.Id, a =>
                    {
                        spentBefore = a.CostUsd;
                        Record(a, parser, stream);
                        // A conversation's turn is over: it waits for the owner's next input.
                        if (conversational && !AgentStatuses.IsFinal(a.Status))
                        {
                            a.Status = AgentStatuses.Waiting;
                        }
                    }, cancellationToken);
                    await BudgetsAsync(recorded, spentBefore, cancellationToken);
                    status = conversational ? AgentStatuses.Waiting : status;
                }
                if (n == ReadSize)
                {
                    continue; // more is waiting: read on at once
                }
            }

            var now = time.GetUtcNow().UtcDateTime;
            if (now >= nextProbe)
            {
                nextProbe = now + ProbeInterval;
                var state = await backend.ProbeAsync(process, cancellationToken);
                if (state.State == AgentRunState.Running && status == AgentStatuses.Starting)
                {
                    status = AgentStatuses.Running;
                    await UpdateAsync(agent.Id, a =>
                    {
                        a.Status = AgentStatuses.Running;
                        a.StartedAt ??= state.StartedAt ?? now;
                    }, cancellationToken);
                }
                else if (state.State is AgentRunState.Exited or AgentRunState.Gone)
                {
                    // Everything the agent wrote is in the log once it has exited: drain it.
                    while ((n = await backend.ReadOutputAsync(process, readOffset, buffer.AsMemory(carry, ReadSize), cancellationToken)) > 0)
                    {
                        readOffset += n;
                        carry = Publish(stream, parser, buffer, carry + n, ref appended, final: false, out _);
                    }
                    Publish(stream, parser, buffer, carry, ref appended, final: true, out _);
                    parser.Flush();
                    prompts.Seen(new PromptBatch(agent.Id, backend, process, parser.TakePrompts(), Ended: true));
                    // A one-turn agent that reads its task from stream-json input may exit 0 after a failed turn: its result decides.
                    var turnFailed = launcher.IsStreamJson(agent.Type) && !launcher.IsConversational(agent.Type) && parser.LastResultFailed;
                    await FinishAsync(agent.Id, state, stream, parser, turnFailed, cancellationToken);
                    return;
                }
                await EscalateKillAsync(agent.Id, backend, process, now, cancellationToken);
            }

            // Wait for the next write (or poll), then let output that follows closely gather into
            // one chunk, so a chatty agent makes one frame per watcher per batch, not per line.
            if (watch is { Notifies: true })
            {
                await watch.WaitAsync(ProbeInterval, cancellationToken);
            }
            else
            {
                await Task.Delay(poll, time, cancellationToken);
            }
            var gathering = stream.GatheringWindow(batch, options.Value.MaxFramesPerSecond) - time.GetElapsedTime(lastPublished);
            if (gathering > TimeSpan.Zero)
            {
                await Task.Delay(gathering, time, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Appends the complete part of the buffer (at <paramref name="appended"/> in the log: what the feed has already is
    /// skipped) and tells the other nodes; returns how many bytes (a split UTF-8 character) wait for the next read.
    /// </summary>
    private int Publish(AgentFeed stream, LineParser parser, byte[] buffer, int length, ref long appended, bool final, out bool sawResult)
    {
        var complete = final ? length : Utf8Boundary.CompleteLength(buffer.AsSpan(0, length));
        if (stream.AppendAt(appended, buffer.AsSpan(0, complete)) is { } chunk)
        {
            relay.Appended(stream, chunk);
        }
        appended += complete;
        sawResult = parser.Feed(buffer.AsSpan(0, complete));
        var carry = length - complete;
        buffer.AsSpan(complete, carry).CopyTo(buffer);
        return carry;
    }

    private async Task CloseInputAsync(string agentId, IExecutionBackend backend, AgentProcess process, CancellationToken cancellationToken)
    {
        try
        {
            await backend.CloseInputAsync(process, cancellationToken);
        }
        catch (Exception e) when (e is AgentNotRunningException or PlaceUnreachableException or IOException)
        {
            // Ended already, or out of reach now: it ends on its own, or is found when its place answers again.
            AgentsLog.InputNotClosed(logger, agentId, e.Message);
        }
    }

    private async Task EscalateKillAsync(string agentId, IExecutionBackend backend, AgentProcess process, DateTime now, CancellationToken cancellationToken)
    {
        bool due;
        lock (_killLock)
        {
            due = _killDeadlines.TryGetValue(agentId, out var deadline) && now >= deadline;
            if (due)
            {
                _killDeadlines.Remove(agentId);
            }
        }
        if (due)
        {
            AgentsLog.KillEscalated(logger, agentId);
            await backend.SignalAsync(process, AgentSignal.Kill, cancellationToken);
        }
    }

    private async Task FinishAsync(string agentId, AgentProcessState state, AgentFeed stream, LineParser parser, bool turnFailed, CancellationToken cancellationToken)
    {
        lock (_killLock)
        {
            _killDeadlines.Remove(agentId);
        }
        double? spentBefore = null;
        var final = await UpdateAsync(agentId, a =>
        {
            spentBefore = a.CostUsd;
            a.Status = a.KillRequested ? AgentStatuses.Killed
                : state.State == AgentRunState.Gone ? AgentStatuses.Lost
                : state.ExitCode == 0 && !turnFailed ? AgentStatuses.Completed
                : AgentStatuses.Failed;
            if (turnFailed && a.Status == AgentStatuses.Failed)
            {
                a.Error ??= $"Its turn ended in an error: {parser.LastError ?? "(no message)"}";
            }
            a.ExitCode = state.ExitCode;
            a.CompletedAt = time.GetUtcNow().UtcDateTime;
            a.StartedAt ??= state.StartedAt; // it may have run and ended between two probes
            if (a.Status == AgentStatuses.Lost)
            {
                a.Error = state.Reason ?? "The agent's process disappeared without an exit code (was the machine restarted?).";
            }
            Record(a, parser, stream);
        }, cancellationToken);
        stream.End(final.Status);
        relay.Ended(stream);
        streams.Close(agentId);
        await leases.ReleaseAsync(agentId, CancellationToken.None);
        metrics.Ended(final.Backend, final.Status, final.OutputBytes);
        await BudgetsAsync(final, spentBefore, CancellationToken.None);
        AgentsLog.Finished(logger, agentId, final.Status, final.ExitCode);
    }

    private void Record(Agent agent, LineParser parser, AgentFeed stream)
    {
        // Claude reports running totals: what they grew by since the last record is what was spent meanwhile.
        metrics.Spent(agent.Backend, agent.CostUsd, parser.CostUsd, agent.InputTokens, parser.InputTokens, agent.OutputTokens, parser.OutputTokens);
        agent.OutputBytes = stream.Position;
        agent.Model = parser.Model ?? agent.Model;
        agent.CostUsd = parser.CostUsd ?? agent.CostUsd;
        agent.InputTokens = parser.InputTokens ?? agent.InputTokens;
        agent.OutputTokens = parser.OutputTokens ?? agent.OutputTokens;
        agent.Summary = parser.Summary ?? agent.Summary;
    }

    /// <summary>After <paramref name="agent"/>'s cost grew: the budgets over it are checked (a failure is logged; following goes on).</summary>
    private async Task BudgetsAsync(Agent agent, double? before, CancellationToken cancellationToken)
    {
        if ((agent.CostUsd ?? 0) <= (before ?? 0))
        {
            return;
        }
        try
        {
            await budgets.SpentAsync(agent, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            AgentsLog.BudgetNotChecked(logger, agent.Id, e);
        }
    }

    private async Task<Agent> UpdateAsync(string agentId, Action<Agent> change, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.SingleAsync(a => a.Id == agentId, cancellationToken);
        change(agent);
        await db.SaveChangesAsync(cancellationToken);
        await events.StatusChangedAsync(agent, cancellationToken);
        return agent;
    }

    /// <summary>An agent this node follows: since when (its lease was taken then), how to stop, and where it runs once known.</summary>
    private sealed class Following(CancellationTokenSource stop)
    {
        /// <summary>When its lease was taken (until then, a renewal pass leaves it alone).</summary>
        public DateTime Since { get; set; } = DateTime.MaxValue;
        public CancellationTokenSource Stop { get; } = stop;
        public (IExecutionBackend Backend, AgentProcess Process)? Where { get; set; }
    }
}
