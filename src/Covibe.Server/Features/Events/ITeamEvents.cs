using Covibe.Protocol;

namespace Covibe.Server.Features.Events;

/// <summary>
/// The one way features tell a team something live (chat, agent status, previews, boxes): they publish here, and the hub
/// delivers it to the team's connections (its two halves, one node and several, live in Features/Hub). A seam below
/// every feature, so that publishing needs no hub.
/// </summary>
public interface ITeamEvents
{
    /// <summary>To every member of the team.</summary>
    void Publish<T>(string teamId, T message) where T : HubMessage;

    /// <summary>
    /// One variant for the members in <paramref name="who"/> (<c>build(true)</c>; <c>*</c> stands for everyone), e.g. an agent's
    /// controllers, and one for everyone else (<c>build(false)</c>).
    /// </summary>
    void Publish<T>(string teamId, IReadOnlyCollection<string> who, Func<bool, T> build) where T : HubMessage;
}
