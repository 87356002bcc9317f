using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Hub;
using Microsoft.EntityFrameworkCore;
using Covibe.Web;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Delivers one agent's output to one connection from a position to the end: from the in-memory
/// ring when it still holds the bytes, else from the agent's log or the cluster's buffer
/// (<see cref="AgentOutputReader"/>), and once caught up, live from the feed (which offers each new
/// chunk to every live watcher at once). Each subscription moves at its own reader's pace, so a
/// slow reader falls behind (and catches up from the ring or the log) without delaying anyone
/// else, and never skips a byte it could read; bytes this node can read nowhere are announced as
/// an <c>agent_output_gap</c>, not waited for.
/// </summary>
public sealed class AgentOutputPump(AgentFeeds streams, ExecutionBackends backends, AgentOutputReader reader, IDbContextFactory<CovibeDb> dbs)
{
    private const int ReadSize = 64 * 1024;
    private static readonly TimeSpan Retry = TimeSpan.FromMilliseconds(50);

    /// <summary>Sends from <paramref name="from"/> (or from the current end when null: live only) until the agent's output ends.</summary>
    public async Task RunAsync(HubConnection connection, string agentId, long? from, CancellationToken cancellationToken)
    {
        // A followed agent's feed knows all that is needed; only a finished one needs the database.
        var feed = streams.Get(agentId);
        var ownerId = feed?.OwnerId;
        var process = feed?.Process;
        var backend = feed is null ? null : backends.Get(feed.Backend);
        var next = from ?? feed?.Position;
        byte[]? buffer = null;
        // Once the agent has finished, its length and status never change: ask the database once.
        (long End, string Status)? finished = null;
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
                var canControl = connection.Member?.UserId == ownerId;
                var position = Math.Max(0, next ??= end);

                if (stream?.ChunkAt(position) is { } chunk)
                {
                    if (position == chunk.Start)
                    {
                        var (frame, compressed) = chunk.FrameFor(connection, canControl);
                        await connection.SendStreamAsync(frame, cancellationToken, compressed);
                    }
                    else
                    {
                        await connection.SendStreamAsync(AgentFeed.Frame(agentId, ownerId!, position, chunk.Data.AsSpan((int)(position - chunk.Start)), canControl), cancellationToken);
                    }
                    next = chunk.End;
                    continue;
                }
                if (position >= end)
                {
                    if (final is not null)
                    {
                        connection.TrySend(TeamHub.Serialize(new AgentOutputEndMessage(agentId, position, final)));
                        return;
                    }
                    if (stream is null)
                    {
                        await Task.Delay(Retry, cancellationToken);
                        continue;
                    }
                    // Caught up: go live until this connection falls behind or the agent ends.
                    var live = new LiveWatcher(connection, canControl, position);
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
                buffer ??= System.Buffers.ArrayPool<byte>.Shared.Rent(ReadSize);
                var (start, n) = await reader.ReadAsync(agentId, backend.Name, process, position, limit, buffer.AsMemory(0, ReadSize), cancellationToken);
                if (start > position || n == 0)
                {
                    // Nowhere this node can read: say so, and go on from what it can.
                    var resume = n == 0 ? limit : start;
                    await connection.SendStreamAsync(TeamHub.Serialize(new AgentOutputGapMessage(agentId, position, resume,
                        "These bytes are in the agent's log on another machine only, and no longer in this server's memory or the cluster's buffer.")), cancellationToken);
                    next = resume;
                    if (n == 0)
                    {
                        continue;
                    }
                }
                var length = start + n < end ? Utf8Boundary.CompleteLength(buffer.AsSpan(0, n)) : n;
                length = length == 0 ? n : length;
                await connection.SendStreamAsync(AgentFeed.Frame(agentId, ownerId!, start, buffer.AsSpan(0, length), canControl), cancellationToken);
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

    /// <summary>
    /// One subscription while it is live: queues each chunk's frame on the connection without
    /// waiting; when the connection has no room (or is closing), it stops and the subscription
    /// catches up from <see cref="Next"/> at the reader's pace.
    /// </summary>
    private sealed class LiveWatcher(HubConnection connection, bool canControl, long next) : ILiveWatcher
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Next { get; private set; } = next;

        public Task Done => _done.Task;

        public void Offer(AgentFeed.Chunk chunk)
        {
            if (_done.Task.IsCompleted)
            {
                return;
            }
            var (frame, compressed) = chunk.FrameFor(connection, canControl);
            if (chunk.Start == Next && connection.TryQueueStream(frame, compressed))
            {
                Next = chunk.End;
                return;
            }
            _done.TrySetResult();
        }

        public void Ended() => _done.TrySetResult();
    }
}
