using Covibe.Protocol;

namespace Covibe.Server.Data;

internal static class TeamMappings
{
    public static TeamDto ToDto(this Team team) => new(team.Id, team.Name, team.OwnerId, team.CreatedAt);

    public static UserDto ToDto(this User user) => new(user.Id, user.TeamId, user.Email, user.Name, user.CreatedAt);

    public static InviteSummary ToSummary(this Invite invite) =>
        new(invite.Id, invite.CreatedBy, invite.CreatedAt, invite.ExpiresAt, invite.MaxUses, invite.Uses, invite.RevokedAt);
}
