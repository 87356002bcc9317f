namespace Covibe.Server.Features.Repositories;

/// <summary>
/// A team's repository (one per team, issue 25): where agents' branches start and go, and what the preview and boxes
/// fetch. Its credential is sealed (<see cref="DeployKey"/> or <see cref="Token"/>, with <c>SecretBox</c>, owner the team);
/// <see cref="HostKeys"/> are the SSH host keys pinned when it was first reached (known_hosts lines). <see cref="Url"/> is
/// null while only a deploy key was made, before the owner connects the repository.
/// </summary>
public sealed class TeamRepository
{
    public const string KeyPurpose = "repository-deploy-key";
    public const string TokenPurpose = "repository-token";

    public required string TeamId { get; init; }
    public string? Url { get; set; }
    public string? Branch { get; set; }
    /// <summary><see cref="RepositoryAuth"/>: <c>none</c>, <c>ssh-key</c> or <c>token</c>.</summary>
    public string Auth { get; set; } = RepositoryAuth.None;
    public string? DeployKey { get; set; }
    public string? DeployPublicKey { get; set; }
    public string? Token { get; set; }
    public string? Username { get; set; }
    public string? HostKeys { get; set; }
    public string? ConnectedBy { get; set; }
    public DateTime? ConnectedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>How the server logs in to a team's repository.</summary>
public static class RepositoryAuth
{
    public const string None = "none";
    public const string SshKey = "ssh-key";
    public const string Token = "token";
}
