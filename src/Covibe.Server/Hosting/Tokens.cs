using System.Security.Cryptography;
using System.Text;

namespace Covibe.Server.Hosting;

/// <summary>Random tokens and their stored form. Only hashes of bearer secrets reach the database.</summary>
public static class Tokens
{
    public static string NewToken(int bytes = 32) => Base64Url(RandomNumberGenerator.GetBytes(bytes));

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    public static string NewId() => Guid.CreateVersion7().ToString("N");

    /// <summary>Whether a presented secret equals the expected one, in time that does not depend on where they differ.</summary>
    public static bool FixedTimeEquals(string? presented, string? expected) =>
        presented is not null && expected is not null
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
