using System.ComponentModel.DataAnnotations;

namespace Covibe.Server.Features.Teams;

/// <summary><c>Covibe:Teams</c>.</summary>
public sealed class TeamsOptions
{
    public const string Section = "Covibe:Teams";

    /// <summary>Lifetime of an invite code when the request does not say.</summary>
    [Range(1, 720)]
    public int InviteExpiryHours { get; set; } = 168;

    /// <summary>When false, <c>POST /api/team/create</c> is refused: only invited members get in.</summary>
    public bool AllowTeamCreation { get; set; } = true;
}
