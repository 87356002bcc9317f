using System.ComponentModel.DataAnnotations;

namespace Covibe.Server.Features.Hub.SocketIo;

/// <summary><c>Covibe:Hub:SocketIo</c>: the hub's Socket.IO endpoint, <c>/socket.io/</c> (seed 001's clients).</summary>
public sealed class SocketIoOptions
{
    public const string Section = "Covibe:Hub:SocketIo";

    /// <summary>Whether <c>/socket.io/</c> is served.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often the server pings a client (Engine.IO's <c>pingInterval</c>).</summary>
    [Range(100, 600_000)]
    public int PingIntervalMilliseconds { get; set; } = 25_000;

    /// <summary>How long a client has to answer a ping before its session ends (Engine.IO's <c>pingTimeout</c>).</summary>
    [Range(100, 600_000)]
    public int PingTimeoutMilliseconds { get; set; } = 20_000;

    /// <summary>
    /// The largest body a long-polling client may post (Engine.IO's <c>maxPayload</c>; clients batch their packets below
    /// it); a larger one ends the session with HTTP 413. Each packet in it is still held to <c>Covibe:Hub:MaxMessageBytes</c>.
    /// </summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxPayloadBytes { get; set; } = 1_000_000;

    /// <summary>Bytes of packets held for a long-polling client between its requests; beyond, its queue fills (the slow-client policy).</summary>
    [Range(16 * 1024, 64 * 1024 * 1024)]
    public int PollBufferBytes { get; set; } = 1024 * 1024;
}
