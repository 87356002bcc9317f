using Covibe.Web;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Covibe.Server.Features.Cluster;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Agent output between nodes: the node that follows an agent sends each new chunk, with its position in the log, on
/// <c>&lt;Channel&gt;:output</c>; every other node appends it to a feed of its own for that agent, which its clients watch
/// live exactly as if the agent were followed there. Positions make it safe: a chunk heard twice (a node that took an
/// agent over reads its log again from the start) is skipped, and a chunk missed (Redis was away) leaves a gap the
/// readers fill from the log.
/// It also keeps the latest output of each agent in Redis (seed 001's <c>agent:{agentId}:output</c>, a stream per agent whose
/// entry ids are byte positions, trimmed to about <see cref="ClusterOptions.OutputBufferBytes"/>): a node that cannot read
/// an agent's log (it is on another machine) reads from there what its memory no longer holds.
/// </summary>
public sealed class RedisAgentRelay(RedisBus bus, AgentFeeds feeds, IOptions<AgentsOptions> options, IOptions<ClusterOptions> cluster)
    : IAgentOutputRelay, IAgentOutputStore, IHostedService
{
    private const string Suffix = "output";
    private const string DataField = "d";
    private const int ReadEntries = 64;

    public Task StartAsync(CancellationToken cancellationToken) => bus.SubscribeAsync(Suffix, Heard);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Appended(AgentFeed feed, OutputChunk chunk)
    {
        Keep(feed.AgentId, chunk);
        bus.Publish(Suffix, RelayedOutputCodec.Encode(new RelayedOutput(bus.Node, feed.AgentId, feed.TeamId, feed.OwnerId, feed.Backend, chunk.Start, chunk.Data)));
    }

    private RedisKey KeyOf(string agentId) => $"{cluster.Value.KeyPrefix}:agent:{agentId}:output";

    /// <summary>
    /// Adds the chunk under id <c>&lt;start&gt;-1</c> (ids must grow: a node that took the agent over and reads its log again
    /// from the start adds nothing until it passes what is kept), trimming what lies more than the buffer behind, and
    /// keeps the key for <see cref="ClusterOptions.OutputKeptHours"/> after the last byte. Fire and forget, before the
    /// publish on the same connection, so whoever hears a chunk can read it from Redis too.
    /// </summary>
    private void Keep(string agentId, OutputChunk chunk)
    {
        if (bus.Database is not { } db || cluster.Value.OutputBufferBytes == 0)
        {
            return;
        }
        var key = KeyOf(agentId);
        var oldest = chunk.Start - cluster.Value.OutputBufferBytes;
        object[] args = oldest > 0
            ? [key, "MINID", "~", $"{oldest}-0", $"{chunk.Start}-1", DataField, chunk.Data]
            : [key, $"{chunk.Start}-1", DataField, chunk.Data];
        db.Execute("XADD", args, CommandFlags.FireAndForget);
        db.KeyExpire(key, TimeSpan.FromHours(cluster.Value.OutputKeptHours), CommandFlags.FireAndForget);
    }

    public async Task<(long Start, byte[] Data)?> ReadAsync(string agentId, long position, int maxBytes, CancellationToken cancellationToken)
    {
        if (bus.Database is not { } db)
        {
            return null;
        }
        var key = KeyOf(agentId);
        try
        {
            // The entry holding the position is the last one that starts at or before it.
            var holding = await db.StreamRangeAsync(key, "-", $"{position}-1", 1, Order.Descending);
            var from = holding.Length == 1 ? holding[0].Id : (RedisValue)"-";
            var output = new MemoryStream();
            long? start = null;
            long next = 0;
            foreach (var entry in await db.StreamRangeAsync(key, from, "+", ReadEntries))
            {
                var entryStart = long.Parse(((string)entry.Id!).Split('-')[0], System.Globalization.CultureInfo.InvariantCulture);
                var data = (byte[])entry[DataField]!;
                if (entryStart + data.Length <= position)
                {
                    continue;
                }
                start ??= next = Math.Max(position, entryStart);
                if (entryStart > next)
                {
                    break; // a hole in what is kept: the bytes before it first
                }
                var skip = (int)(next - entryStart);
                if (skip < data.Length)
                {
                    output.Write(data, skip, Math.Min(data.Length - skip, maxBytes - (int)output.Length));
                    next = entryStart + data.Length;
                }
                if (output.Length >= maxBytes)
                {
                    break;
                }
            }
            return start is { } first && output.Length > 0 ? (first, output.ToArray()) : null;
        }
        catch (Exception e) when (e is RedisException or FormatException)
        {
            return null; // away, or not ours: the reader says what it could not read
        }
    }

    public void Ended(AgentFeed feed) =>
        bus.Publish(Suffix, RelayedOutputCodec.Encode(new RelayedOutput(bus.Node, feed.AgentId, feed.TeamId, feed.OwnerId, feed.Backend, feed.Position, [], feed.FinalStatus)));

    private void Heard(RedisValue value)
    {
        if (RelayedOutputCodec.Decode((byte[])value!) is not { } output || output.Node == bus.Node)
        {
            return;
        }
        if (output.FinalStatus is { } status)
        {
            if (feeds.Get(output.AgentId) is { } ended)
            {
                ended.End(status, output.Position);
                feeds.Close(ended);
            }
            return;
        }
        var feed = feeds.Get(output.AgentId)
            ?? feeds.OpenElsewhere(output.AgentId, output.TeamId, output.OwnerId, output.Backend, options.Value.RingBytes, output.Position);
        feed.AppendAt(output.Position, output.Data);
    }
}
