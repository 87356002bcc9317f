using System.ComponentModel.DataAnnotations;
using Covibe.Web;

namespace Covibe.Server.Features.Hub;

/// <summary><c>Covibe:Hub</c>; <c>ALLOWED_ORIGINS</c> maps onto <see cref="AllowedOrigins"/>.</summary>
public sealed class HubOptions
{
    public const string Section = "Covibe:Hub";

    /// <summary>Comma-separated browser origins allowed besides the server's own, e.g. <c>https://covibe.example.com</c>.</summary>
    public string AllowedOrigins { get; set; } = "";

    /// <summary>Largest message a client may send; larger ones are refused with <c>message_too_large</c>.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = 64 * 1024;

    /// <summary>Messages queued for one connection before it counts as too slow and is closed.</summary>
    [Range(8, 1_000_000)]
    public int SendQueueCapacity { get; set; } = 1024;

    /// <summary>
    /// Agent output queued for one connection beyond what its socket holds; a watcher with this much
    /// waiting stops being sent new output live and catches up at its own pace (from memory or the log).
    /// </summary>
    [Range(16 * 1024, 256 * 1024 * 1024)]
    public int StreamBufferBytes { get; set; } = 256 * 1024;

    /// <summary>
    /// Agent output to clients that offer permessage-deflate (browsers do) goes out compressed, each
    /// chunk deflated once and the same bytes sent to every such watcher (docs/protocol.md).
    /// </summary>
    public bool SharedCompression { get; set; } = true;

    /// <summary>WebSocket ping interval; a peer that does not answer within the same time is dropped.</summary>
    [Range(1, 3600)]
    public int KeepAliveSeconds { get; set; } = 20;

    /// <summary>Messages a connection may send per second (bursts up to twice that); beyond, they are refused with <c>rate_limited</c>.</summary>
    [Range(1, 100_000)]
    public int MessagesPerSecond { get; set; } = 50;

    /// <summary>How long an unauthenticated connection may wait before sending <c>join_team</c>.</summary>
    [Range(1, 600)]
    public int JoinTimeoutSeconds { get; set; } = 10;

    /// <summary>Connections one member may have joined at once (tabs and devices); one more is closed with <c>too_many_connections</c>.</summary>
    [Range(1, 10_000)]
    public int MaxConnectionsPerMember { get; set; } = 20;

    /// <summary>Presence changes within this window go out as one <c>team_presence</c>.</summary>
    [Range(0, 10_000)]
    public int PresenceDebounceMilliseconds { get; set; } = 100;

    internal bool IsOriginAllowed(string origin, HttpRequest request) => Covibe.Web.OriginPolicy.IsAllowed(AllowedOrigins, origin, request);
}
