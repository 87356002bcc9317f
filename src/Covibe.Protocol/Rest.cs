namespace Covibe.Protocol;

// REST request and response bodies. Routes are in docs/api.md; the seed's routes
// (POST /api/team/create, /api/auth/login, ...) keep their documented shapes.

/// <summary><see cref="SignupToken"/>: the operator's signup token, on a server whose signup needs one.</summary>
public sealed record CreateTeamRequest(string? Name, string? UserName, string? Email, string? Password, string? SignupToken = null);

/// <summary>
/// Seed 001's "team login with invite code". With <see cref="InviteCode"/> a newcomer joins
/// (and needs <see cref="Name"/>); a member logs in again with email and password, naming the
/// team by <see cref="TeamId"/> only when the email belongs to more than one team.
/// </summary>
public sealed record LoginRequest(string? Email, string? Password, string? InviteCode = null, string? Name = null, string? TeamId = null);

public sealed record RefreshRequest(string? RefreshToken);

public sealed record LogoutRequest(string? RefreshToken = null, bool AllDevices = false);

public sealed record TeamDto(string Id, string Name, string OwnerId, DateTime CreatedAt);

public sealed record UserDto(string Id, string TeamId, string Email, string Name, DateTime CreatedAt);

public sealed record AuthResponse(
    TeamDto Team,
    UserDto User,
    string AccessToken,
    DateTime AccessTokenExpiresAt,
    string RefreshToken,
    DateTime RefreshTokenExpiresAt);

/// <summary>Team creation also hands back the first invite code, so the owner can share it at once.</summary>
public sealed record CreateTeamResponse(AuthResponse Auth, InviteResponse Invite);

public sealed record CreateInviteRequest(int? ExpiresInHours = null, int? MaxUses = null);

/// <summary>The invite code is shown once, here; the server keeps only its hash.</summary>
public sealed record InviteResponse(string Id, string InviteCode, DateTime ExpiresAt, int? MaxUses);

public sealed record InviteSummary(string Id, string CreatedBy, DateTime CreatedAt, DateTime ExpiresAt, int? MaxUses, int Uses, DateTime? RevokedAt);

public sealed record MemberDto(string Id, string Name, string Email, bool IsOwner, DateTime JoinedAt, string Status);

public sealed record TeamResponse(TeamDto Team, MemberDto[] Members);

public sealed record MeResponse(UserDto User, TeamDto Team, bool IsOwner);

public sealed record PostChatMessageRequest(string? Message);

/// <summary>A message of the team's chat; <see cref="Kind"/> <c>activity</c>: not said but done by the member (a merge, a push), in the same stream.</summary>
public sealed record ChatMessageDto(long Id, string UserId, string UserName, string Message, DateTime Timestamp, string? Kind = null);

/// <summary>A page of history, oldest first. Pass <see cref="NextBefore"/> as <c>before</c> for the page before it.</summary>
public sealed record ChatHistoryResponse(ChatMessageDto[] Messages, long? NextBefore);

/// <summary><see cref="Redis"/>: with several nodes (REDIS_URL), <c>connected</c> or <c>down</c>; null on a single node.</summary>
public sealed record HealthResponse(string Status, int Sessions, long Uptime, string Version, string Database, string? Redis = null, string? Engine = null);
