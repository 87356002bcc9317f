using Covibe.Server.Data;

namespace Covibe.Server.Features.Auth;

/// <summary>
/// One login on one device: the family of rotating refresh tokens. Access tokens name it in
/// their <c>sid</c> claim, so revoking it signs that device out at once.
/// </summary>
public sealed class AuthSession
{
    public required string Id { get; init; }
    public required string UserId { get; init; }
    public User? User { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime ExpiresAt { get; set; }
    public DateTime? RevokedAt { get; set; }
    public string? RevokedReason { get; set; }
}

public sealed class RefreshToken
{
    public required string Id { get; init; }
    public required string SessionId { get; init; }
    /// <summary>SHA-256 of the token; the token itself only ever exists on the client.</summary>
    public required string TokenHash { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime ExpiresAt { get; init; }
    /// <summary>Set when rotated. Presenting a used token again revokes the whole session.</summary>
    public DateTime? UsedAt { get; set; }
}
