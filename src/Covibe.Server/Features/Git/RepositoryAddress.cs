using System.Net;
using System.Text.RegularExpressions;

namespace Covibe.Server.Features.Git;

/// <summary>How git reaches a repository.</summary>
public enum RepositoryTransport
{
    Https,
    Http,
    Ssh,
    /// <summary>A repository on this machine's disk (only with the operator's opt-in).</summary>
    Local,
}

/// <summary>
/// A repository's address taken apart: the transport, the host and port to reach (and pin, for SSH), the user and the path.
/// Parsed, never passed to a shell; what git would read as an option (a host or path starting with <c>-</c>), credentials
/// in the address, and every transport but these four (<c>ext::</c>, <c>git://</c>, ...) are refused.
/// </summary>
public sealed partial record RepositoryAddress(string Url, RepositoryTransport Transport, string Host, int Port, string? User, string Path)
{
    /// <summary>Whether the host is this machine (a token over plain http to it never crosses a network).</summary>
    public bool IsLoopback => Host == "localhost" || (IPAddress.TryParse(Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>The host as known_hosts names it: <c>host</c> on port 22, <c>[host]:port</c> otherwise.</summary>
    public string KnownHostsName => Port == 22 ? Host : $"[{Host}]:{Port}";

    /// <summary>The address, or why it is not one Covibe uses (a sentence to show).</summary>
    public static RepositoryAddress Parse(string? url, bool allowLocal, out string? problem)
    {
        problem = null;
        var text = url?.Trim() ?? "";
        if (GitNames.RepositoryProblem(text, RepositoryFetcher.Agent) is { } shape && !(allowLocal && IsLocalPath(text)))
        {
            problem = shape;
            return Invalid(text);
        }
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http" or "ssh")
        {
            if ((uri.UserInfo.Length > 0 && uri.Scheme != "ssh") || uri.UserInfo.Contains(':', StringComparison.Ordinal))
            {
                problem = "Leave credentials out of the repository's address: addresses are shown and logged. Give a token or key separately.";
                return Invalid(text);
            }
            if (uri.Host.Length == 0 || uri.Host.StartsWith('-') || uri.AbsolutePath.Length <= 1)
            {
                problem = "Give the repository's host and path, like https://github.com/owner/app.git.";
                return Invalid(text);
            }
            var transport = uri.Scheme switch { "https" => RepositoryTransport.Https, "http" => RepositoryTransport.Http, _ => RepositoryTransport.Ssh };
            var user = uri.UserInfo.Length > 0 ? Uri.UnescapeDataString(uri.UserInfo) : null;
            if (user is not null && !UserName().IsMatch(user))
            {
                problem = $"'{user}' is not an SSH user name.";
                return Invalid(text);
            }
            return new(text, transport, uri.Host, uri.Port > 0 ? uri.Port : transport switch { RepositoryTransport.Https => 443, RepositoryTransport.Http => 80, _ => 22 },
                user, Uri.UnescapeDataString(uri.AbsolutePath));
        }
        // git's scp-like form (user@host:path): never a scheme (host "git" in git://...), never a host or path starting with '-'.
        if (ScpLike().Match(text) is { Success: true } scp)
        {
            return new(text, RepositoryTransport.Ssh, scp.Groups["host"].Value, 22, scp.Groups["user"].Success ? scp.Groups["user"].Value : null, scp.Groups["path"].Value);
        }
        if (allowLocal && (IsLocalPath(text) || text.StartsWith("file:///", StringComparison.Ordinal)))
        {
            var local = text.StartsWith("file://", StringComparison.Ordinal) ? new Uri(text).LocalPath : text;
            return new(text, RepositoryTransport.Local, "", 0, null, local);
        }
        problem = "Give the repository's address over https (https://github.com/owner/app.git) or SSH (git@github.com:owner/app.git)"
            + (allowLocal ? ", or a path on this machine." : ".");
        return Invalid(text);
    }

    private static bool IsLocalPath(string text) => text.Length is > 1 and <= 2000 && System.IO.Path.IsPathFullyQualified(text) && !text.Any(char.IsControl);

    private static RepositoryAddress Invalid(string text) => new(text, RepositoryTransport.Https, "", 0, null, "");

    [GeneratedRegex(@"^((?<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?(?<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?!//)(?<path>[A-Za-z0-9._~/][A-Za-z0-9._~/-]*)$")]
    private static partial Regex ScpLike();

    [GeneratedRegex(@"^[A-Za-z0-9._][A-Za-z0-9._-]*$")]
    private static partial Regex UserName();
}
