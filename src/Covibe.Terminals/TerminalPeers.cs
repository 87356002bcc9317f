using System.Net.WebSockets;
using Covibe.Protocol;

namespace Covibe.Terminals;

/// <summary>A session that another server of the same deployment holds, as that server announced it.</summary>
public sealed record PeerTerminal(string Node, string? OwnerTeamId, TerminalSessionInfo Info)
{
    /// <summary>As <see cref="TerminalSession.IsVisibleTo"/>: its owner, and the owner's team while it is shared.</summary>
    public bool IsVisibleTo(TerminalUser user) =>
        Info.Owner == user.Id || (Info.Shared == true && OwnerTeamId is not null && OwnerTeamId == user.TeamId);
}

/// <summary>
/// The other servers of a deployment (several <c>covibe serve</c> nodes behind one load balancer): which sessions they
/// hold, and a connection to one of them on a member's behalf. A client lists, attaches to and controls those sessions
/// through whichever server it reached, which relays its messages (<see cref="TerminalUpstreams"/>); the server that holds
/// a session checks every message as it would a client's. One server alone: <see cref="NoTerminalPeers"/>.
/// </summary>
public interface ITerminalPeers
{
    /// <summary>The sessions the other servers hold now.</summary>
    IReadOnlyCollection<PeerTerminal> Sessions { get; }

    PeerTerminal? Find(string id);

    /// <summary>The other server a new session with <paramref name="config"/> must open on (its machine is reached from there only); null: here.</summary>
    Task<string?> PlaceAsync(TerminalUser user, TerminalConfig? config, CancellationToken cancellationToken);

    /// <summary>
    /// Opens seed 004's protocol on <paramref name="node"/>, signed in as <paramref name="user"/> (the server then
    /// sends <c>ready</c>). Throws <see cref="WebSocketException"/> or <see cref="HttpRequestException"/> when it cannot.
    /// </summary>
    Task<WebSocket> ConnectAsync(string node, TerminalUser user, CancellationToken cancellationToken);

    /// <summary>Another server's sessions changed; the argument is the team whose lists are stale (null: any).</summary>
    event Action<string?>? Changed;
}

public sealed class NoTerminalPeers : ITerminalPeers
{
    public IReadOnlyCollection<PeerTerminal> Sessions => [];

    public PeerTerminal? Find(string id) => null;

    public Task<string?> PlaceAsync(TerminalUser user, TerminalConfig? config, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    public Task<WebSocket> ConnectAsync(string node, TerminalUser user, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("This server runs alone: there is no other server to connect to.");

    public event Action<string?>? Changed
    {
        add { }
        remove { }
    }
}
