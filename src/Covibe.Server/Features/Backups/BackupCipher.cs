using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Covibe.Server.Features.Backups;

/// <summary>
/// A backup encrypted to an operator's RSA public key, so the machine that makes backups cannot read them: a random
/// AES-256 key wrapped with RSA-OAEP-SHA256, then the archive in 64 KiB chunks, each sealed with AES-GCM under a nonce
/// that counts the chunks; every full chunk is marked "more" and the last (shorter, possibly empty) one "last", so a chunk
/// moved, dropped, or a file cut short does not open. Layout after the magic: u16 length, the wrapped key, then per chunk
/// u32 length, ciphertext, 16-byte tag. The chunking and buffering are the framework's <see cref="CryptoStream"/>'s; the
/// two transforms here seal and open one chunk each.
/// </summary>
public static class BackupCipher
{
    public const int ChunkBytes = 64 * 1024;
    private const int TagBytes = 16;
    private const int FrameBytes = 4 + ChunkBytes + TagBytes;
    private static readonly byte[] Last = [1];
    private static readonly byte[] More = [0];

    /// <summary>A stream that encrypts what is written to <paramref name="output"/>; dispose it to seal the last chunk (the output stays open).</summary>
    public static Stream Encrypting(Stream output, RSA recipient)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var wrapped = recipient.Encrypt(key, RSAEncryptionPadding.OaepSHA256);
        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)wrapped.Length);
        output.Write(length);
        output.Write(wrapped);
        return new CryptoStream(output, new Sealing(key), CryptoStreamMode.Write, leaveOpen: true);
    }

    /// <summary>A stream that reads and checks what <see cref="Encrypting"/> wrote, with the private half of the key.</summary>
    public static Stream Decrypting(Stream input, RSA key)
    {
        Span<byte> length = stackalloc byte[2];
        input.ReadExactly(length);
        var wrapped = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        input.ReadExactly(wrapped);
        byte[] aes;
        try
        {
            aes = key.Decrypt(wrapped, RSAEncryptionPadding.OaepSHA256);
        }
        catch (CryptographicException e)
        {
            throw new CryptographicException("This backup was not encrypted to this key (its key could not be unwrapped).", e);
        }
        return new CryptoStream(input, new Opening(aes), CryptoStreamMode.Read, leaveOpen: true);
    }

    private static void Nonce(Span<byte> nonce, long chunk)
    {
        nonce.Clear();
        BinaryPrimitives.WriteInt64BigEndian(nonce[4..], chunk);
    }

    /// <summary>The AES-GCM key and the chunk count one backup shares; given up (and the key wiped) after the last chunk.</summary>
    private abstract class Chunks(byte[] key) : ICryptoTransform
    {
        private AesGcm? _aes = new(key, TagBytes);
        private long _chunk;

        public abstract int InputBlockSize { get; }
        public abstract int OutputBlockSize { get; }
        public bool CanTransformMultipleBlocks => false;
        public bool CanReuseTransform => false;

        public abstract int TransformBlock(byte[] inputBuffer, int inputOffset, int inputCount, byte[] outputBuffer, int outputOffset);
        public abstract byte[] TransformFinalBlock(byte[] inputBuffer, int inputOffset, int inputCount);

        /// <summary>The next chunk's cipher and its nonce.</summary>
        protected (AesGcm Aes, long Chunk) Next() => (_aes ?? throw new ObjectDisposedException(nameof(BackupCipher)), _chunk++);

        public void Dispose()
        {
            _aes?.Dispose();
            _aes = null;
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private sealed class Sealing(byte[] key) : Chunks(key)
    {
        public override int InputBlockSize => ChunkBytes;
        public override int OutputBlockSize => FrameBytes;

        public override int TransformBlock(byte[] inputBuffer, int inputOffset, int inputCount, byte[] outputBuffer, int outputOffset) =>
            Seal(inputBuffer.AsSpan(inputOffset, inputCount), outputBuffer.AsSpan(outputOffset), More);

        public override byte[] TransformFinalBlock(byte[] inputBuffer, int inputOffset, int inputCount)
        {
            var frame = new byte[4 + inputCount + TagBytes];
            Seal(inputBuffer.AsSpan(inputOffset, inputCount), frame, Last);
            Dispose();
            return frame;
        }

        private int Seal(ReadOnlySpan<byte> plain, Span<byte> frame, byte[] mark)
        {
            var (aes, chunk) = Next();
            Span<byte> nonce = stackalloc byte[12];
            Nonce(nonce, chunk);
            BinaryPrimitives.WriteInt32BigEndian(frame, plain.Length);
            aes.Encrypt(nonce, plain, frame.Slice(4, plain.Length), frame.Slice(4 + plain.Length, TagBytes), mark);
            return 4 + plain.Length + TagBytes;
        }
    }

    private sealed class Opening(byte[] key) : Chunks(key)
    {
        public override int InputBlockSize => FrameBytes;
        public override int OutputBlockSize => ChunkBytes;

        /// <summary>A full chunk, which must be marked "more".</summary>
        public override int TransformBlock(byte[] inputBuffer, int inputOffset, int inputCount, byte[] outputBuffer, int outputOffset) =>
            Open(inputBuffer.AsSpan(inputOffset, inputCount), outputBuffer.AsSpan(outputOffset), More);

        /// <summary>What is left at the end: the last chunk, marked "last"; nothing, or less than its length says, is a file cut short.</summary>
        public override byte[] TransformFinalBlock(byte[] inputBuffer, int inputOffset, int inputCount)
        {
            var plain = new byte[ChunkBytes];
            var n = Open(inputBuffer.AsSpan(inputOffset, inputCount), plain, Last);
            Dispose();
            return plain[..n];
        }

        private int Open(ReadOnlySpan<byte> frame, Span<byte> plain, byte[] mark)
        {
            var size = frame.Length < 4 ? -1 : BinaryPrimitives.ReadInt32BigEndian(frame);
            if (size < 0 || 4 + size + TagBytes > frame.Length)
            {
                throw new CryptographicException("The backup ends before its last chunk: it was cut short.");
            }
            if (size > ChunkBytes || 4 + size + TagBytes != frame.Length)
            {
                throw new CryptographicException("The backup is damaged (a chunk's length is not one).");
            }
            var (aes, chunk) = Next();
            Span<byte> nonce = stackalloc byte[12];
            Nonce(nonce, chunk);
            try
            {
                aes.Decrypt(nonce, frame.Slice(4, size), frame.Slice(4 + size, TagBytes), plain[..size], mark);
            }
            catch (AuthenticationTagMismatchException e)
            {
                throw new CryptographicException("The backup is damaged or was changed (a chunk does not check).", e);
            }
            return size;
        }
    }
}
