namespace Covibe.Server.Features.Push;

/// <summary>
/// One browser's Web Push subscription (<c>push_subscriptions</c>): whose, and the endpoint with its keys, sealed (the endpoint
/// is a capability: whoever has it can send to that browser). <see cref="EndpointHash"/> finds it again.
/// </summary>
public sealed class PushSubscriptionRow
{
    public required string Id { get; init; }
    public required string UserId { get; init; }
    public required string TeamId { get; init; }
    public required string EndpointHash { get; init; }
    /// <summary>The endpoint, p256dh and auth as JSON, sealed with the server's secrets key.</summary>
    public required string Sealed { get; set; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>The server's VAPID key pair (<c>push_keys</c>, one row): the public half as browsers take it, the private half sealed.</summary>
public sealed class PushKeyRow
{
    public const string Vapid = "vapid";

    public required string Id { get; init; }
    public required string PublicKey { get; init; }
    public required string PrivateKey { get; set; }
    public DateTime CreatedAt { get; init; }
}
