using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Hub;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Delivers one agent's output to one connection from a position to the end: from the in-memory
/// ring when it still holds the bytes, else from the agent's log. Each subscription moves at its
/// own reader's pace, so a slow reader falls behind (and catches up from the log) without
/// delaying anyone else, and never skips a byte.
/// </summary>
public sealed class AgentOutputPump(AgentFeeds streams, ExecutionBackends backends, IDbContextFactory<CovibeDb> dbs)
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
        var buffer = new byte[ReadSize];
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
            }
            var canControl = connection.Member?.UserId == ownerId;
            var position = Math.Max(0, next ??= end);

            if (stream?.ChunkAt(position) is { } chunk)
            {
                var frame = position == chunk.Start
                    ? chunk.Frame(canControl)
                    : AgentFeed.Frame(agentId, ownerId!, position, chunk.Data.AsSpan((int)(position - chunk.Start)), canControl);
                await connection.SendStreamAsync(frame, cancellationToken);
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
                await (stream is null ? Task.Delay(Retry, cancellationToken) : stream.WaitAsync(position, cancellationToken));
                continue;
            }

            // Older than the ring holds: read it back from the log.
            var limit = stream is null ? end : Math.Min(end, stream.RingStart);
            var n = process is not null && backend is not null
                ? await backend.ReadOutputAsync(process, position, buffer.AsMemory(0, (int)Math.Min(ReadSize, Math.Max(1, limit - position))), cancellationToken)
                : 0;
            if (n == 0)
            {
                await Task.Delay(Retry, cancellationToken);
                continue;
            }
            var length = position + n < end ? Utf8Boundary.CompleteLength(buffer.AsSpan(0, n)) : n;
            length = length == 0 ? n : length;
            await connection.SendStreamAsync(AgentFeed.Frame(agentId, ownerId!, position, buffer.AsSpan(0, length), canControl), cancellationToken);
            next = position + length;
        }
    }
}
