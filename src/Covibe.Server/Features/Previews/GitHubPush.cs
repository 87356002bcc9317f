using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// What the preview needs from GitHub's push event: the ref pushed, the commit it points to now
/// (<c>after</c>; all zeros when the branch was deleted), and the repository's addresses.
/// </summary>
public sealed record GitHubPush(string Ref, string After, bool Deleted, IReadOnlyList<string> RepositoryUrls)
{
    public const string NoCommit = "0000000000000000000000000000000000000000";

    public string? Branch => Ref.StartsWith("refs/heads/", StringComparison.Ordinal) ? Ref["refs/heads/".Length..] : null;

    /// <summary>
    /// Whether <paramref name="signatureHeader"/> (<c>X-Hub-Signature-256: sha256=HEX</c>) is the HMAC-SHA256 of
    /// <paramref name="body"/> with <paramref name="secret"/>, compared in constant time.
    /// </summary>
    public static bool SignatureMatches(ReadOnlySpan<byte> body, string? signatureHeader, ReadOnlySpan<byte> secret)
    {
        const string Prefix = "sha256=";
        if (signatureHeader is null || !signatureHeader.StartsWith(Prefix, StringComparison.Ordinal) || signatureHeader.Length != Prefix.Length + 64)
        {
            return false;
        }
        Span<byte> claimed = stackalloc byte[32];
        if (Convert.FromHexString(signatureHeader.AsSpan(Prefix.Length), claimed, out _, out var written) != System.Buffers.OperationStatus.Done || written != 32)
        {
            return false;
        }
        Span<byte> actual = stackalloc byte[32];
        HMACSHA256.HashData(secret, body, actual);
        return CryptographicOperations.FixedTimeEquals(actual, claimed);
    }

    /// <summary>The signature GitHub sends for <paramref name="body"/> (for tests and tools).</summary>
    public static string Sign(ReadOnlySpan<byte> body, string secret) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    /// <summary>Reads a push event's body; null when it is not one (no <c>ref</c> or <c>after</c>).</summary>
    public static GitHubPush? Parse(ReadOnlySpan<byte> body)
    {
        using var document = JsonDocument.Parse(body.ToArray());
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("ref", out var refValue) || refValue.ValueKind != JsonValueKind.String
            || !root.TryGetProperty("after", out var after) || after.ValueKind != JsonValueKind.String)
        {
            return null;
        }
        var deleted = root.TryGetProperty("deleted", out var d) && d.ValueKind == JsonValueKind.True;
        var urls = new List<string>();
        if (root.TryGetProperty("repository", out var repository) && repository.ValueKind == JsonValueKind.Object)
        {
            foreach (var name in (string[])["clone_url", "html_url", "git_url", "ssh_url", "url"])
            {
                if (repository.TryGetProperty(name, out var url) && url.ValueKind == JsonValueKind.String && url.GetString() is { Length: > 0 } text)
                {
                    urls.Add(text);
                }
            }
        }
        var commit = after.GetString()!;
        return new GitHubPush(refValue.GetString()!, commit, deleted || commit == NoCommit, urls);
    }

    /// <summary>A repository address reduced to host and path, so that <c>https://github.com/a/b.git</c> and <c>https://github.com/a/b</c> match.</summary>
    public static string Normalize(string url)
    {
        var text = url.Trim();
        if (text.EndsWith('/'))
        {
            text = text.TrimEnd('/');
        }
        if (text.EndsWith(".git", StringComparison.OrdinalIgnoreCase))
        {
            text = text[..^4];
        }
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" or "git" or "ssh")
        {
            return (uri.Host + uri.AbsolutePath).ToLowerInvariant();
        }
        // git@github.com:owner/repo
        var at = text.IndexOf('@', StringComparison.Ordinal);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (at >= 0 && colon > at)
        {
            return (text[(at + 1)..colon] + "/" + text[(colon + 1)..]).ToLowerInvariant();
        }
        return text;
    }
}
