using Covibe.Server.Features.Hub;

namespace Covibe.Server.Features.Cluster;

/// <summary>Several nodes: delivered to this node's connections at once, and told to the others through Redis.</summary>
public sealed class RedisTeamEvents(TeamHub hub, RedisBus bus) : ITeamEvents
{
    public void Publish<T>(string teamId, T message) where T : Protocol.HubMessage
    {
        var frame = TeamHub.Serialize(message);
        hub.Deliver(teamId, null, frame, frame);
        bus.Publish(new TeamEventEnvelope(bus.Node, teamId, null, frame, frame));
    }

    public void Publish<T>(string teamId, string ownerId, Func<bool, T> build) where T : Protocol.HubMessage
    {
        var (forOwner, forOthers) = (TeamHub.Serialize(build(true)), TeamHub.Serialize(build(false)));
        hub.Deliver(teamId, ownerId, forOwner, forOthers);
        bus.Publish(new TeamEventEnvelope(bus.Node, teamId, ownerId, forOwner, forOthers));
    }
}
