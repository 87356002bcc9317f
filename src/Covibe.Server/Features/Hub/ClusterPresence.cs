namespace Covibe.Server.Features.Hub;

/// <summary>
/// Presence across nodes: who of a team is connected to the other nodes, and telling them who is connected here. A
/// person with tabs on two nodes is one person: online if any tab is, away if all are.
/// </summary>
public interface IClusterPresence
{
    /// <summary>The team's members connected to other nodes (status, connections).</summary>
    IReadOnlyDictionary<string, (string Status, int Connections)> Elsewhere(string teamId);

    /// <summary>This node's members of the team, as they are now (told to the other nodes if it changed).</summary>
    void Changed(string teamId, IReadOnlyDictionary<string, (string Status, int Connections)> here);

    /// <summary>The team's members elsewhere changed (raised with the team's id).</summary>
    event Action<string>? ElsewhereChanged;
}

/// <summary>One node: nobody elsewhere.</summary>
public sealed class NoClusterPresence : IClusterPresence
{
    private static readonly Dictionary<string, (string, int)> None = [];

    public IReadOnlyDictionary<string, (string Status, int Connections)> Elsewhere(string teamId) => None;

    public void Changed(string teamId, IReadOnlyDictionary<string, (string Status, int Connections)> here)
    {
    }

    public event Action<string>? ElsewhereChanged
    {
        add { }
        remove { }
    }
}

public static class ClusterPresence
{
    /// <summary>One entry a person: online if online anywhere, else away; connections added up.</summary>
    public static IReadOnlyDictionary<string, (string Status, int Connections)> Merge(
        IReadOnlyDictionary<string, (string Status, int Connections)> here, IReadOnlyDictionary<string, (string Status, int Connections)> elsewhere)
    {
        if (elsewhere.Count == 0)
        {
            return here;
        }
        var merged = new Dictionary<string, (string Status, int Connections)>(here);
        foreach (var (user, (status, connections)) in elsewhere)
        {
            merged[user] = merged.TryGetValue(user, out var local)
                ? (local.Status == Protocol.PresenceStatuses.Online || status == Protocol.PresenceStatuses.Online ? Protocol.PresenceStatuses.Online : Protocol.PresenceStatuses.Away,
                    local.Connections + connections)
                : (status, connections);
        }
        return merged;
    }
}
