using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Auth;

/// <summary>
/// PBKDF2-HMAC-SHA256 with a per-password salt. The stored string names the algorithm and
/// iteration count, so the count can rise later without invalidating existing hashes.
/// </summary>
public sealed class PasswordHasher(IOptions<AuthOptions> options)
{
    private const string Scheme = "pbkdf2-sha256";
    private const int SaltBytes = 16;
    private const int HashBytes = 32;

    public string Hash(string password)
    {
        var iterations = options.Value.PasswordIterations;
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, HashBytes);
        return string.Join('$', Scheme, iterations.ToString(CultureInfo.InvariantCulture), Convert.ToBase64String(salt), Convert.ToBase64String(hash));
    }

    public bool Verify(string password, string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != Scheme || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var iterations))
        {
            return false;
        }
        var salt = Convert.FromBase64String(parts[2]);
        var expected = Convert.FromBase64String(parts[3]);
        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    /// <summary>Spends the same time as a real check, so a missing account cannot be told apart by timing.</summary>
    public void VerifyNothing(string password) => Verify(password, _dummyHash.Value);

    private readonly Lazy<string> _dummyHash = new(() => new PasswordHasher(options).Hash("not-a-real-password"));
}
