namespace Covibe.Server.Features.Repositories;

/// <summary><c>Covibe:Repositories</c>: the teams' repositories (docs/configuration.md).</summary>
public sealed class RepositoriesOptions
{
    public const string Section = "Covibe:Repositories";

    /// <summary>Lets a team connect a repository on this machine's disk (a path or <c>file://</c>): an operator's opt-in, off by default.</summary>
    public bool AllowLocalRepositories { get; set; }

    /// <summary>Agents' work trees (and branches) a team may keep at once: a new agent on the team's repository past it is refused until some are discarded.</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 10_000)]
    public int MaxWorktreesPerTeam { get; set; } = 20;
}
