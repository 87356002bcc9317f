using Covibe.Server.Features.Cluster;
using StackExchange.Redis;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// Several nodes: an event is delivered to this node's connections at once and told to the others through Redis (the
/// team events' channel, in <see cref="TeamEventCodec"/>'s envelope, frames made once); theirs are delivered here.
/// </summary>
public sealed class RedisTeamEvents(TeamHub hub, RedisBus bus) : ITeamEvents, IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => bus.SubscribeAsync(null, Heard);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Publish<T>(string teamId, T message) where T : Protocol.HubMessage
    {
        var frame = TeamHub.Serialize(message);
        hub.Deliver(teamId, [], frame, frame);
        Tell(new TeamEventEnvelope(bus.Node, teamId, [], frame, frame));
    }

    public void Publish<T>(string teamId, IReadOnlyCollection<string> who, Func<bool, T> build) where T : Protocol.HubMessage
    {
        var (forThem, forOthers) = (TeamHub.Serialize(build(true)), TeamHub.Serialize(build(false)));
        hub.Deliver(teamId, who, forThem, forOthers);
        Tell(new TeamEventEnvelope(bus.Node, teamId, [.. who], forThem, forOthers));
    }

    /// <summary>Fire and forget: a node that misses it catches up by position or on the next event.</summary>
    private void Tell(TeamEventEnvelope envelope) => bus.Publish(null, TeamEventCodec.Encode(envelope));

    private void Heard(RedisValue value)
    {
        // Ordered per sending node; this node's own come back and are skipped (delivered already).
        if (TeamEventCodec.Decode((byte[])value!) is not { } e || e.Node == bus.Node)
        {
            return;
        }
        hub.Deliver(e.TeamId, e.Who, e.ForThem, e.ForOthers);
    }
}
