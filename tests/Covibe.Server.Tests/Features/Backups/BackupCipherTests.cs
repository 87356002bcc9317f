using System.Security.Cryptography;
using Covibe.Server.Features.Backups;

namespace Covibe.Server.Tests;

/// <summary>A backup encrypted to an operator's key opens with that key only, and whole: nothing changed, moved or cut off.</summary>
public sealed class BackupCipherTests
{
    private static readonly RSA Key = RSA.Create(2048);

    private static byte[] Seal(byte[] plain, RSA recipient)
    {
        using var output = new MemoryStream();
        using (var sealing = BackupCipher.Encrypting(output, recipient))
        {
            // In uneven writes, across chunk boundaries.
            for (var at = 0; at < plain.Length; at += 40_000)
            {
                sealing.Write(plain, at, Math.Min(40_000, plain.Length - at));
            }
        }
        return output.ToArray();
    }

    private static byte[] Open(byte[] sealedBytes, RSA key)
    {
        using var opening = BackupCipher.Decrypting(new MemoryStream(sealedBytes), key);
        using var plain = new MemoryStream();
        opening.CopyTo(plain);
        return plain.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(BackupCipher.ChunkBytes)]
    [InlineData(3 * BackupCipher.ChunkBytes + 17)]
    public void WhatIsSealed_OpensWithTheKey_AsItWas(int size)
    {
        var plain = RandomNumberGenerator.GetBytes(size);
        var sealedBytes = Seal(plain, Key);
        Open(sealedBytes, Key).ShouldBe(plain);
        if (size > 64)
        {
            sealedBytes.AsSpan().IndexOf(plain.AsSpan(0, 64)).ShouldBe(-1); // none of it in the clear
        }
    }

    [Fact]
    public void AnotherKey_AByteChanged_OrTheEndCutOff_DoesNotOpen()
    {
        var plain = RandomNumberGenerator.GetBytes(2 * BackupCipher.ChunkBytes + 5);
        var sealedBytes = Seal(plain, Key);
        using var other = RSA.Create(2048);
        Should.Throw<CryptographicException>(() => Open(sealedBytes, other)).Message.ShouldContain("not encrypted to this key");

        var changed = (byte[])sealedBytes.Clone();
        changed[^100] ^= 1;
        Should.Throw<CryptographicException>(() => Open(changed, Key)).Message.ShouldContain("damaged or was changed");

        // Cut after a whole chunk: every chunk left checks, but the last one marked last is missing.
        var oneChunk = 2 + 256 + 4 + BackupCipher.ChunkBytes + 16;
        Should.Throw<CryptographicException>(() => Open(sealedBytes[..(oneChunk + 4 + BackupCipher.ChunkBytes + 16)], Key)).Message.ShouldContain("cut short");
    }
}
