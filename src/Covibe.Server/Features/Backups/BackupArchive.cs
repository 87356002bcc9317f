using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Covibe.Server.Features.Backups;

/// <summary>
/// A backup file: <c>COVIBE-BACKUP 1</c> and a newline, then <c>P</c> (plain) or <c>E</c> (encrypted to an operator's key,
/// <see cref="BackupCipher"/>), then a gzipped tar: <c>manifest.json</c>, <c>database/covibe.db</c> (SQLite) or
/// <c>database/covibe.pgdump</c> (<c>pg_dump -Fc</c>), and the data directory's files under <c>data/</c>.
/// </summary>
public static class BackupArchive
{
    public static readonly byte[] Magic = Encoding.ASCII.GetBytes("COVIBE-BACKUP 1\n");
    public const string Manifest = "manifest.json";
    public const string SqliteDatabase = "database/covibe.db";
    public const string PostgresDatabase = "database/covibe.pgdump";
    public const string Data = "data/";

    /// <summary>Writes the header to <paramref name="file"/>; answers the stream the tar goes into (dispose it to finish).</summary>
    public static Stream Open(Stream file, RSA? recipient)
    {
        file.Write(Magic);
        file.WriteByte(recipient is null ? (byte)'P' : (byte)'E');
        var inner = recipient is null ? file : BackupCipher.Encrypting(file, recipient);
        return new GZipStream(inner, CompressionLevel.Fastest, leaveOpen: recipient is null);
    }

    /// <summary>The tar inside a backup file, checked and (with <paramref name="key"/>) decrypted as it is read.</summary>
    public static Stream Read(Stream file, RSA? key)
    {
        var magic = new byte[Magic.Length + 1];
        if (file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false) < magic.Length || !magic.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw new InvalidDataException("This is not a Covibe backup (made by covibe backup).");
        }
        switch (magic[^1])
        {
            case (byte)'P':
                return new GZipStream(file, CompressionMode.Decompress, leaveOpen: true);
            case (byte)'E' when key is null:
                throw new InvalidDataException("This backup is encrypted: give the private key it was encrypted to (--decrypt-with KEY.pem).");
            case (byte)'E':
                return new GZipStream(BackupCipher.Decrypting(file, key), CompressionMode.Decompress);
            default:
                throw new InvalidDataException("This backup is of a format this version does not know.");
        }
    }

    /// <summary>A regular file's first <paramref name="length"/> bytes (the size it had when the backup came to it: a log may grow meanwhile).</summary>
    public static PaxTarEntry FileEntry(string name, FileStream file, long length, UnixFileMode mode, DateTimeOffset modified) =>
        new(TarEntryType.RegularFile, name)
        {
            DataStream = new Prefix(file, length),
            Mode = mode,
            ModificationTime = modified,
        };

    /// <summary>The first bytes of a seekable stream, as a stream of its own length (TarWriter writes the size it says).</summary>
    private sealed class Prefix(Stream inner, long length) : Stream
    {
        private long _position;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, length - _position)]);
            if (n == 0 && _position < length)
            {
                throw new IOException("A file was cut shorter while it was being backed up.");
            }
            _position += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => _position = inner.Position = value;
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };

        public override void Flush() { }

        // The file is open for reading only: it refuses these itself.
        public override void SetLength(long value) => inner.SetLength(value);
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    }
}
