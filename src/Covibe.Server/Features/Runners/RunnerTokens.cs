using System.Security.Cryptography;
using System.Text;

namespace Covibe.Server.Features.Runners;

/// <summary>
/// A runner's secrets: one-time registration tokens (<c>cvreg_</c>) and runner credentials (<c>cvr_</c>), 256 random bits
/// each. The server stores only their SHA-256 (enough for secrets this long; nothing to salt or stretch) and compares in
/// fixed time through the hash.
/// </summary>
public static class RunnerTokens
{
    public const string RegistrationPrefix = "cvreg_";
    public const string CredentialPrefix = "cvr_";

    public static string NewRegistrationToken() => RegistrationPrefix + Random();

    public static string NewCredential() => CredentialPrefix + Random();

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>The bearer credential of a runner request, or null when there is none of the runner's form.</summary>
    public static string? FromRequest(Microsoft.AspNetCore.Http.HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer " + CredentialPrefix, StringComparison.Ordinal) && header.Length < 200 ? header["Bearer ".Length..] : null;
    }

    private static string Random() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
