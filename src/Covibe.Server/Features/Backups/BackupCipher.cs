using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Covibe.Server.Features.Backups;

/// <summary>
/// A backup encrypted to an operator's RSA public key, so the machine that makes backups cannot read them: a random
/// AES-256 key wrapped with RSA-OAEP-SHA256, then the archive in 64 KiB chunks, each sealed with AES-GCM under a nonce
/// that counts the chunks, the last one marked as last (so a chunk moved, dropped, or a file cut short does not open).
/// Layout after the magic: u16 length, the wrapped key, then per chunk u32 length, ciphertext, 16-byte tag.
/// </summary>
public static class BackupCipher
{
    public const int ChunkBytes = 64 * 1024;
    private const int TagBytes = 16;
    private static readonly byte[] Last = [1];
    private static readonly byte[] More = [0];

    /// <summary>A stream that encrypts what is written to <paramref name="output"/>; dispose it to seal the last chunk.</summary>
    public static Stream Encrypting(Stream output, RSA recipient)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var wrapped = recipient.Encrypt(key, RSAEncryptionPadding.OaepSHA256);
        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)wrapped.Length);
        output.Write(length);
        output.Write(wrapped);
        return new Sealing(output, key);
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
        return new Opening(input, aes);
    }

    private static void Nonce(Span<byte> nonce, long chunk)
    {
        nonce.Clear();
        BinaryPrimitives.WriteInt64BigEndian(nonce[4..], chunk);
    }

    private sealed class Sealing(Stream output, byte[] key) : Stream
    {
        private readonly AesGcm _aes = new(key, TagBytes);
        private readonly byte[] _plain = new byte[ChunkBytes];
        private readonly byte[] _cipher = new byte[ChunkBytes];
        private readonly byte[] _tag = new byte[TagBytes];
        private int _filled;
        private long _chunk;
        private bool _sealed;

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (!buffer.IsEmpty)
            {
                if (_filled == ChunkBytes)
                {
                    Flush(last: false);
                }
                var n = Math.Min(buffer.Length, ChunkBytes - _filled);
                buffer[..n].CopyTo(_plain.AsSpan(_filled));
                _filled += n;
                buffer = buffer[n..];
            }
        }

        private void Flush(bool last)
        {
            Span<byte> nonce = stackalloc byte[12];
            Nonce(nonce, _chunk++);
            _aes.Encrypt(nonce, _plain.AsSpan(0, _filled), _cipher.AsSpan(0, _filled), _tag, last ? Last : More);
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(length, _filled);
            output.Write(length);
            output.Write(_cipher, 0, _filled);
            output.Write(_tag);
            _filled = 0;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && !_sealed)
            {
                _sealed = true;
                Flush(last: true);
                _aes.Dispose();
                CryptographicOperations.ZeroMemory(key);
            }
            base.Dispose(disposing);
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => output.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private sealed class Opening(Stream input, byte[] key) : Stream
    {
        private readonly AesGcm _aes = new(key, TagBytes);
        private readonly byte[] _plain = new byte[ChunkBytes];
        private readonly byte[] _cipher = new byte[ChunkBytes];
        private readonly byte[] _tag = new byte[TagBytes];
        private int _start;
        private int _end;
        private long _chunk;
        private bool _done;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            while (_start == _end)
            {
                if (_done)
                {
                    return 0;
                }
                Next();
            }
            var n = Math.Min(buffer.Length, _end - _start);
            _plain.AsSpan(_start, n).CopyTo(buffer);
            _start += n;
            return n;
        }

        private void Next()
        {
            Span<byte> length = stackalloc byte[4];
            if (input.ReadAtLeast(length, 4, throwOnEndOfStream: false) < 4)
            {
                throw new CryptographicException("The backup ends before its last chunk: it was cut short.");
            }
            var size = BinaryPrimitives.ReadInt32BigEndian(length);
            if (size is < 0 or > ChunkBytes)
            {
                throw new CryptographicException("The backup is damaged (a chunk's length is not one).");
            }
            input.ReadExactly(_cipher.AsSpan(0, size));
            input.ReadExactly(_tag);
            Span<byte> nonce = stackalloc byte[12];
            Nonce(nonce, _chunk++);
            try
            {
                _aes.Decrypt(nonce, _cipher.AsSpan(0, size), _tag, _plain.AsSpan(0, size), More);
            }
            catch (AuthenticationTagMismatchException)
            {
                try
                {
                    _aes.Decrypt(nonce, _cipher.AsSpan(0, size), _tag, _plain.AsSpan(0, size), Last);
                    _done = true;
                }
                catch (AuthenticationTagMismatchException e)
                {
                    throw new CryptographicException("The backup is damaged or was changed (a chunk does not check).", e);
                }
            }
            (_start, _end) = (0, size);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _aes.Dispose();
                CryptographicOperations.ZeroMemory(key);
            }
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
