using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Covibe.Server.Features.Repositories;

/// <summary>A key pair made for a team: the private half as PEM (sealed at once, never written), the public half as a forge wants it.</summary>
public sealed record DeployKeyPair(byte[] PrivateKeyPem, string PublicKey, string Fingerprint);

/// <summary>
/// Makes SSH deploy keys in memory: ECDSA on P-256 (<c>ecdsa-sha2-nistp256</c>, which GitHub, GitLab and Gitea take and
/// .NET makes without a file; OpenSSH reads its PEM private key). No <c>ssh-keygen</c>, which writes the private key to disk.
/// </summary>
public static class DeployKeys
{
    private const string KeyType = "ecdsa-sha2-nistp256";

    public static DeployKeyPair Create(string comment)
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var point = ec.ExportParameters(includePrivateParameters: false).Q;
        var q = new byte[65];
        q[0] = 0x04;
        point.X!.CopyTo(q, 1);
        point.Y!.CopyTo(q, 33);
        var blob = Concat(SshString(Encoding.ASCII.GetBytes(KeyType)), SshString("nistp256"u8.ToArray()), SshString(q));
        // Bytes and characters that can be wiped, never a string: the caller seals the PEM and zeroes it.
        var der = ec.ExportECPrivateKey();
        var chars = PemEncoding.Write("EC PRIVATE KEY", der);
        var pem = new byte[chars.Length + 1];
        Encoding.ASCII.GetBytes(chars, pem);
        pem[^1] = (byte)'\n';
        CryptographicOperations.ZeroMemory(der);
        Array.Clear(chars);
        return new DeployKeyPair(pem, $"{KeyType} {Convert.ToBase64String(blob)} {comment}", Covibe.Execution.Ssh.HostKeys.Fingerprint(blob));
    }

    /// <summary>The SHA256 fingerprint of an OpenSSH public key line (<c>type base64 [comment]</c>), as <c>ssh-keygen -l</c> prints it; null if it is not one.</summary>
    public static string? FingerprintOf(string publicKey)
    {
        var parts = publicKey.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 2)
        {
            return null;
        }
        try
        {
            return Covibe.Execution.Ssh.HostKeys.Fingerprint(Convert.FromBase64String(parts[1]));
        }
        catch (FormatException)
        {
            return null;
        }
    }


    private static byte[] SshString(byte[] value)
    {
        var result = new byte[4 + value.Length];
        BinaryPrimitives.WriteInt32BigEndian(result, value.Length);
        value.CopyTo(result, 4);
        return result;
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];
}
