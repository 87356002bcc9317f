using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Secrets;

/// <summary>
/// Seed 000's crypto service, done as the issue asks: AES-256-GCM with a key per record derived
/// (HKDF-SHA256) from ENCRYPTION_KEY and the owner's id and the secret's purpose, which are also
/// bound as associated data, so a ciphertext copied into another user's row does not decrypt.
/// Every envelope names the key it was made with (<c>cv1:&lt;key id&gt;:&lt;base64&gt;</c>), so keys
/// can rotate: new secrets use the current key; earlier keys still read old envelopes.
/// </summary>
public sealed class SecretBox
{
    private const string Version = "cv1";
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private readonly (string Id, byte[] Key) _current;
    private readonly Dictionary<string, byte[]> _keys;

    public SecretBox(IOptions<SecretsOptions> options)
    {
        var o = options.Value;
        _current = Master(o.EncryptionKey!);
        _keys = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [_current.Id] = _current.Key };
        foreach (var previous in Split(o.PreviousKeys))
        {
            var (id, key) = Master(previous);
            _keys.TryAdd(id, key);
        }
    }

    /// <summary>The id of the key new envelopes are made with.</summary>
    public string CurrentKeyId => _current.Id;

    public bool KnowsKey(string keyId) => _keys.ContainsKey(keyId);

    public string Seal(ReadOnlySpan<byte> plaintext, string ownerId, string purpose)
    {
        var aad = Encoding.UTF8.GetBytes($"{ownerId}|{purpose}");
        var blob = new byte[NonceBytes + plaintext.Length + TagBytes];
        var nonce = blob.AsSpan(0, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        var key = RecordKey(_current.Key, aad);
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Encrypt(nonce, plaintext, blob.AsSpan(NonceBytes, plaintext.Length), blob.AsSpan(NonceBytes + plaintext.Length), aad);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
        return $"{Version}:{_current.Id}:{Convert.ToBase64String(blob)}";
    }

    /// <summary>The plaintext; the caller zeroes it when done. Throws <see cref="CryptographicException"/> for a wrong owner, purpose, key or a tampered envelope.</summary>
    public byte[] Open(string envelope, string ownerId, string purpose)
    {
        var parts = envelope.Split(':');
        if (parts.Length != 3 || parts[0] != Version)
        {
            throw new CryptographicException("Not a Covibe secret envelope.");
        }
        if (!_keys.TryGetValue(parts[1], out var master))
        {
            throw new CryptographicException($"The secret was encrypted with key '{parts[1]}', which this server does not have (ENCRYPTION_KEY / ENCRYPTION_KEYS_PREVIOUS).");
        }
        var blob = Convert.FromBase64String(parts[2]);
        if (blob.Length < NonceBytes + TagBytes)
        {
            throw new CryptographicException("The secret envelope is truncated.");
        }
        var aad = Encoding.UTF8.GetBytes($"{ownerId}|{purpose}");
        var plaintext = new byte[blob.Length - NonceBytes - TagBytes];
        var key = RecordKey(master, aad);
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(blob.AsSpan(0, NonceBytes), blob.AsSpan(NonceBytes, plaintext.Length), blob.AsSpan(NonceBytes + plaintext.Length), plaintext, aad);
            return plaintext;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The key id an envelope names, or null if it is not one.</summary>
    public static string? KeyIdOf(string envelope)
    {
        var parts = envelope.Split(':');
        return parts.Length == 3 && parts[0] == Version ? parts[1] : null;
    }

    internal static string[] Split(string? keys) =>
        (keys ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static (string Id, byte[] Key) Master(string secret)
    {
        var key = HKDF.DeriveKey(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(secret), 32,
            salt: "covibe/encryption-key"u8.ToArray(), info: "master"u8.ToArray());
        // The id tells keys apart without revealing them: a hash of a value derived for that purpose only.
        var id = Convert.ToHexStringLower(SHA256.HashData(HKDF.DeriveKey(HashAlgorithmName.SHA256, key, 32, info: "key id"u8.ToArray())))[..12];
        return (id, key);
    }

    private static byte[] RecordKey(byte[] master, byte[] context) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, master, 32, info: [.. "record|"u8, .. context]);
}
