using Covibe.Protocol;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// The one way features tell a team something live (chat, agent status, previews, boxes): they publish here, and the hub
/// delivers it to the team's connections. One node delivers in-process (<see cref="LocalTeamEvents"/>); several nodes
/// need every node to deliver to its own connections.
/// </summary>
public interface ITeamEvents
{
    /// <summary>To every member of the team.</summary>
    void Publish<T>(string teamId, T message) where T : HubMessage;

    /// <summary>One variant for <paramref name="ownerId"/> (<c>build(true)</c>) and one for everyone else (<c>build(false)</c>).</summary>
    void Publish<T>(string teamId, string ownerId, Func<bool, T> build) where T : HubMessage;
}

/// <summary>One node: straight to this node's connections of the team, each frame serialized once.</summary>
public sealed class LocalTeamEvents(TeamHub hub) : ITeamEvents
{
    public void Publish<T>(string teamId, T message) where T : HubMessage => hub.Broadcast(teamId, message);

    public void Publish<T>(string teamId, string ownerId, Func<bool, T> build) where T : HubMessage => hub.Broadcast(teamId, ownerId, build);
}
