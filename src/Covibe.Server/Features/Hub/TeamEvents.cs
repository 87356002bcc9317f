using Covibe.Protocol;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Hub;

/// <summary>One node: straight to this node's connections of the team, each frame serialized once.</summary>
public sealed class LocalTeamEvents(TeamHub hub) : ITeamEvents
{
    public void Publish<T>(string teamId, T message) where T : HubMessage => hub.Broadcast(teamId, message);

    public void Publish<T>(string teamId, IReadOnlyCollection<string> who, Func<bool, T> build) where T : HubMessage => hub.Broadcast(teamId, who, build);
}
