namespace Covibe.Server.Features.Push;

/// <summary>
/// <c>Covibe:Push</c>: Web Push (VAPID, RFC 8292) so a member's phone hears an agent's request with the page closed. The key
/// pair is made once and kept in the database (its private half sealed), shared by every node.
/// </summary>
public sealed class PushOptions
{
    public const string Section = "Covibe:Push";

    /// <summary>Whether the server sends Web Push at all.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Who runs this server, for push services that need to reach the sender (RFC 8292's <c>sub</c>): <c>mailto:</c> or <c>https:</c>.</summary>
    [System.ComponentModel.DataAnnotations.RegularExpression("^(mailto:|https://).+")]
    public string Subject { get; set; } = "mailto:admin@localhost";

    /// <summary>
    /// Subscriptions to push services on this machine's or private networks' addresses, or over plain http (a test's
    /// stand-in push service). Off: only https endpoints on public addresses are taken, so a member cannot make the
    /// server call into its own network.
    /// </summary>
    public bool AllowPrivateEndpoints { get; set; }

    /// <summary>Subscriptions one member may have (one per browser or phone).</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 100)]
    public int MaxPerMember { get; set; } = 10;
}
