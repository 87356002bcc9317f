using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Microsoft.EntityFrameworkCore;
using Covibe.Web;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Delivers one agent's output to one watcher (a hub connection) from a position to the end: from the in-memory
/// ring when it still holds the bytes, else from the agent's log or the cluster's buffer
/// (<see cref="AgentOutputReader"/>), and once caught up, live from the feed (which offers each new
/// chunk to every live watcher at once). Each subscription moves at its own reader's pace, so a
/// slow reader falls behind (and catches up from the ring or the log) without delaying anyone
/// else, and never skips a byte it could read; bytes this node can read nowhere are announced as
/// an <c>agent_output_gap</c>, not waited for.
/// </summary>
public sealed class AgentOutputPump(AgentFeeds streams, ExecutionBackends backends, AgentOutputReader reader, AgentControl control, AgentActions actions, IDbContextFactory<CovibeDb> dbs)
{
    // What a watcher reads of the log at once: up to the next block of the log (LogBlocks.NextStart).
    private const int ReadSize = LogBlocks.Size + 3;
    private static readonly TimeSpan Retry = TimeSpan.FromMilliseconds(50);

    /// <summary>Sends from <paramref name="from"/> (or from the current end when null: live only) until the agent's output ends.</summary>
    public async Task RunAsync(IAgentWatcher watcher, string agentId, long? from, CancellationToken cancellationToken)
    {
        // A followed agent's feed knows all that is needed; only a finished one needs the database.
        var feed = streams.Get(agentId);
        using var watching = feed?.Watch();
        var ownerId = feed?.OwnerId;
        var process = feed?.Process;
        var backend = feed is null ? null : backends.Get(feed.Backend);
        var next = from ?? feed?.Position;
        byte[]? buffer = null;
        // Once the agent has finished, its length and status never change: ask the database once.
        (long End, string Status)? finished = null;
        // Who controls it, for an agent without a feed here (one with a feed carries them, kept current).
        string[]? controllers = null;
        if (from is { } replayFrom && await actions.FromAsync(agentId, replayFrom, cancellationToken) is { Length: > 0 } done)
        {
            // What members did from there on, to show in place as the output replays.
            await watcher.SendActionsAsync(agentId, done, cancellationToken);
        }
        try
        {
            while (true)
            {
                var stream = streams.Get(agentId);
                long end;
                string? final;
                if (stream is not null)
                {
                    end = stream.Position;
                    final = stream.FinalStatus;
                }
                else if (finished is { } known)
                {
                    (end, final) = known;
                }
                else
                {
                    // Not (or no longer) followed in memory: the database says how far the log goes.
                    await using var db = await dbs.CreateDbContextAsync(cancellationToken);
                    var agent = await db.Agents.AsNoTracking().SingleAsync(a => a.Id == agentId, cancellationToken);
                    end = agent.OutputBytes;
                    final = AgentStatuses.IsFinal(agent.Status) ? agent.Status : null;
                    ownerId = agent.UserId;
                    process = agent.Process;
                    backend ??= backends.Get(agent.Backend);
                    finished = final is null ? null : (end, final);
                }
                if (stream is null && controllers is null && ownerId is not null)
                {
                    controllers = await control.ControllersAsync(agentId, ownerId, cancellationToken);
                }
                var canControl = AgentControl.Includes(stream?.Controllers ?? controllers ?? [], watcher.UserId);
                var position = Math.Max(0, next ??= end);

                if (stream?.ChunkAt(position) is { } chunk)
                {
                    if (position == chunk.Start)
                    {
                        await watcher.SendAsync(agentId, ownerId!, chunk, canControl, cancellationToken);
                    }
                    else
                    {
                        await watcher.SendAsync(agentId, ownerId!, position, chunk.Data.AsMemory((int)(position - chunk.Start)), canControl, cancellationToken);
                    }
                    next = chunk.End;
                    continue;
                }
                if (position >= end)
                {
                    if (final is not null)
                    {
                        watcher.Ended(agentId, position, final);
                        return;
                    }
                    if (stream is null)
                    {
                        await Task.Delay(Retry, cancellationToken);
                        continue;
                    }
                    // Caught up: go live until this watcher falls behind or the agent ends.
                    var live = new LiveWatcher(watcher, stream, position);
                    if (stream.TryGoLive(live, position))
                    {
                        try
                        {
                            await live.Done.WaitAsync(cancellationToken);
                        }
                        finally
                        {
                            stream.Leave(live);
                        }
                        next = live.Next;
                    }
                    continue;
                }

                // Older than the ring holds: read it back from the log or Redis (a feed of another node's agent does not know where it is yet).
                var limit = stream is null ? end : Math.Min(end, stream.RingStart);
                if (process is null)
                {
                    await using var db = await dbs.CreateDbContextAsync(cancellationToken);
                    process = (await db.Agents.AsNoTracking().SingleAsync(a => a.Id == agentId, cancellationToken)).Process;
                }
                if (process is null || backend is null)
                {
                    await Task.Delay(Retry, cancellationToken);
                    continue;
                }
                // Where a block of the log starts here and lies before the limit, the agent's watchers share it (and its
                // frames): those of its feed here, or, without one (it finished), those replaying it.
                if (LogBlocks.BlockAt(position) is var index and >= 0 && LogBlocks.Span(index).To <= limit
                    && await (stream?.Blocks ?? streams.ReplayOf(agentId)).GetAsync(index, k => ReadBlockAsync(agentId, backend.Name, process, k), cancellationToken) is { } block && block.Start == position)
                {
                    await watcher.SendAsync(agentId, ownerId!, block, canControl, cancellationToken);
                    next = block.End;
                    continue;
                }
                buffer ??= System.Buffers.ArrayPool<byte>.Shared.Rent(ReadSize);
                // On its own, a watcher reads up to where the next block starts, and shares from there.
                var readTo = Math.Min(limit, LogBlocks.NextStart(position));
                var (start, n) = await reader.ReadAsync(agentId, backend.Name, process, position, readTo, buffer.AsMemory(0, ReadSize), cancellationToken);
                if (start > position || n == 0)
                {
                    // Nowhere this node can read: say so, and go on from what it can.
                    var resume = n == 0 ? limit : start;
                    await watcher.SendGapAsync(agentId, position, resume,
                        "These bytes are in the agent's log on another machine only, and no longer in this server's memory or the cluster's buffer.", cancellationToken);
                    next = resume;
                    if (n == 0)
                    {
                        continue;
                    }
                }
                var length = start + n < end ? Utf8Boundary.CompleteLength(buffer.AsSpan(0, n)) : n;
                length = length == 0 ? n : length;
                await watcher.SendAsync(agentId, ownerId!, start, buffer.AsMemory(0, length), canControl, cancellationToken);
                next = start + length;
            }
        }
        finally
        {
            if (buffer is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Block <paramref name="k"/> of the log (<see cref="LogBlocks"/>), or null if it cannot be read whole here.</summary>
    private async Task<OutputChunk?> ReadBlockAsync(string agentId, string backend, Covibe.Execution.AgentProcess process, long k)
    {
        var (from, to) = LogBlocks.Span(k);
        var length = (int)(to - from);
        var bytes = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        try
        {
            // Shared by every watcher that waits for it: no one watcher's cancellation ends it (a local read is short).
            var (start, n) = await reader.ReadAsync(agentId, backend, process, from, to, bytes.AsMemory(0, length), CancellationToken.None);
            return start == from && n == length ? LogBlocks.Cut(k, bytes.AsSpan(0, n)) : null;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>
    /// One subscription while it is live: queues each chunk on the watcher without waiting; when
    /// the watcher has no room (or is closing), it stops and the subscription catches up from
    /// <see cref="Next"/> at the reader's pace.
    /// </summary>
    private sealed class LiveWatcher(IAgentWatcher watcher, AgentFeed feed, long next) : ILiveWatcher
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Next { get; private set; } = next;

        public Task Done => _done.Task;

        public void Offer(OutputChunk chunk)
        {
            if (_done.Task.IsCompleted)
            {
                return;
            }
            // Whether this watcher controls the agent now: a grant or a revocation shows in the very next frame.
            if (chunk.Start == Next && watcher.TryQueue(feed.AgentId, feed.OwnerId, chunk, AgentControl.Includes(feed.Controllers, watcher.UserId)))
            {
                Next = chunk.End;
                return;
            }
            _done.TrySetResult();
        }

        public void Ended() => _done.TrySetResult();
    }
}
