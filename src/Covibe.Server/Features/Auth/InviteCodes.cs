using System.Security.Cryptography;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Auth;

/// <summary>
/// Invite codes: 80 random bits in Crockford base32, grouped for reading aloud
/// (<c>7KQF-2M9X-H4TD-0WCE</c>). Case, dashes and the look-alikes O/I/L are forgiven.
/// </summary>
public static class InviteCodes
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    public static string New()
    {
        Span<char> chars = stackalloc char[16];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = Alphabet[RandomNumberGenerator.GetInt32(Alphabet.Length)];
        }
        return $"{chars[..4]}-{chars[4..8]}-{chars[8..12]}-{chars[12..]}";
    }

    public static string Normalize(string code)
    {
        var upper = code.ToUpperInvariant().Replace("-", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal);
        return upper.Replace('O', '0').Replace('I', '1').Replace('L', '1');
    }

    public static string Hash(string code) => Tokens.Hash(Normalize(code));
}
