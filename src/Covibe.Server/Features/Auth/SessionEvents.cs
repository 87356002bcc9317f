namespace Covibe.Server.Features.Auth;

/// <summary>
/// Raised when sessions are revoked (logout, member removal, refresh-token reuse) so that
/// open WebSockets of those sessions close at once.
/// </summary>
public sealed class SessionEvents
{
    /// <summary>Every revocation, made on this node or on another one.</summary>
    public event Action<IReadOnlyCollection<string>>? Revoked;

    /// <summary>Only the revocations made on this node: with several nodes, the cluster tells the others.</summary>
    public event Action<IReadOnlyCollection<string>>? RevokedHere;

    public void Revoke(IReadOnlyCollection<string> sessionIds)
    {
        if (sessionIds.Count > 0)
        {
            Revoked?.Invoke(sessionIds);
            RevokedHere?.Invoke(sessionIds);
        }
    }

    /// <summary>Another node revoked these sessions: close what this node holds of them.</summary>
    public void RevokedElsewhere(IReadOnlyCollection<string> sessionIds)
    {
        if (sessionIds.Count > 0)
        {
            Revoked?.Invoke(sessionIds);
        }
    }
}
