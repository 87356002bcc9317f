using System.ComponentModel.DataAnnotations;

namespace Covibe.Server.Features.Teams;

/// <summary><c>Covibe:Teams</c>.</summary>
public sealed class TeamsOptions
{
    public const string Section = "Covibe:Teams";
    public const string Open = "open";
    public const string Token = "token";
    public const string Closed = "closed";
    public const string SignupTokenFile = "signup-token";

    /// <summary>Lifetime of an invite code when the request does not say.</summary>
    [Range(1, 720)]
    public int InviteExpiryHours { get; set; } = 168;

    /// <summary>False is the same as <see cref="Signup"/> = <c>closed</c> (kept for configurations that set it).</summary>
    public bool AllowTeamCreation { get; set; } = true;

    /// <summary>
    /// Who may create a team: <c>open</c> (anyone who reaches the server; the default with <c>--dev</c>),
    /// <c>token</c> (whoever has the operator's signup token; the default otherwise), <c>closed</c>
    /// (nobody: only invited members get in).
    /// </summary>
    [RegularExpression("^(open|token|closed)$", ErrorMessage = "Covibe:Teams:Signup must be open, token or closed.")]
    public string? Signup { get; set; }

    /// <summary><c>COVIBE_SIGNUP_TOKEN</c>: the operator's signup token. Unset: one is made and kept in <c>&lt;data&gt;/signup-token</c>.</summary>
    public string? SignupToken { get; set; }

    /// <summary>Where the made token is kept, when it was made (null when the operator set one).</summary>
    public string? SignupTokenPath { get; set; }
}
