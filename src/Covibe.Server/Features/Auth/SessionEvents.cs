namespace Covibe.Server.Features.Auth;

/// <summary>
/// Raised when sessions are revoked (logout, member removal, refresh-token reuse) so that
/// open WebSockets of those sessions close at once.
/// </summary>
public sealed class SessionEvents
{
    public event Action<IReadOnlyCollection<string>>? Revoked;

    public void Revoke(IReadOnlyCollection<string> sessionIds)
    {
        if (sessionIds.Count > 0)
        {
            Revoked?.Invoke(sessionIds);
        }
    }
}
