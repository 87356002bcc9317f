namespace Covibe.Server.Features.Git;

/// <summary>
/// A repository as the server's git reaches it: its address, whether the operator lets the server read repositories on
/// this machine's disk, and how to log in (<see cref="Access"/>: none for a public repository).
/// </summary>
public sealed record GitRemote(string Url, bool AllowLocal = false, GitAccess? Access = null);

/// <summary>
/// What git needs to log in to one repository: variables for that git process's environment only (never its arguments,
/// which every process on the machine can read in /proc), and whether it goes over SSH (which the mirror otherwise refuses).
/// </summary>
public sealed class GitAccess(IReadOnlyDictionary<string, string> environment, bool overSsh)
{
    public IReadOnlyDictionary<string, string> Environment => environment;

    public bool OverSsh => overSsh;

    /// <summary>An HTTPS token, sent as the password of <paramref name="username"/> to <paramref name="url"/> alone, never after a redirect.</summary>
    public static GitAccess Token(string url, string username, string token) =>
        new(new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["GIT_CONFIG_COUNT"] = "2",
            ["GIT_CONFIG_KEY_0"] = $"http.{url}.extraHeader",
            ["GIT_CONFIG_VALUE_0"] = "Authorization: Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{username}:{token}")),
            ["GIT_CONFIG_KEY_1"] = "http.followRedirects",
            ["GIT_CONFIG_VALUE_1"] = "false",
        }, overSsh: false);

    // Never print the credential.
    public override string ToString() => OverSsh ? "GitAccess(ssh)" : "GitAccess(token)";
}
