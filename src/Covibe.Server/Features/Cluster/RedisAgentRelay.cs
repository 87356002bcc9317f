using Covibe.Server.Features.Agents;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Covibe.Server.Features.Cluster;

/// <summary>
/// Agent output between nodes: the node that follows an agent sends each new chunk, with its position in the log, on
/// <c>&lt;Channel&gt;:output</c>; every other node appends it to a feed of its own for that agent, which its clients watch
/// live exactly as if the agent were followed there. Positions make it safe: a chunk heard twice (a node that took an
/// agent over reads its log again from the start) is skipped, and a chunk missed (Redis was away) leaves a gap the
/// readers fill from the log.
/// </summary>
public sealed class RedisAgentRelay(RedisBus bus, AgentFeeds feeds, IOptions<AgentsOptions> options) : IAgentOutputRelay, IHostedService
{
    private const string Suffix = "output";

    public Task StartAsync(CancellationToken cancellationToken) => bus.SubscribeAsync(Suffix, Heard);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Appended(AgentFeed feed, AgentFeed.Chunk chunk) =>
        bus.Publish(Suffix, RelayedOutputCodec.Encode(new RelayedOutput(bus.Node, feed.AgentId, feed.TeamId, feed.OwnerId, feed.Backend, chunk.Start, chunk.Data)));

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
