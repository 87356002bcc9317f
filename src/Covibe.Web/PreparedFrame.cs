using System.Buffers.Binary;

namespace Covibe.Web;

/// <summary>
/// A whole server-to-client WebSocket text frame (RFC 6455 5.2: header, then the payload, unmasked), made once and written
/// as the same bytes to every connection that takes it (as gorilla's <c>PreparedMessage</c> and uWebSockets' prepared
/// messages): a broadcast to many watchers frames each message once, with no per-connection copy or framing. A connection
/// that cannot write frames itself (a <see cref="System.Net.WebSockets.WebSocket"/> the framework accepted, Socket.IO's long polling) takes
/// <see cref="Payload"/>.
/// </summary>
public sealed class PreparedFrame
{
    private const byte FinText = 0b1000_0001;
    private const byte Rsv1 = 0b0100_0000;

    private PreparedFrame(byte[] bytes, int headerLength, bool compressed)
    {
        Bytes = bytes;
        HeaderLength = headerLength;
        Compressed = compressed;
    }

    /// <summary>The frame as it goes on the wire: header and payload.</summary>
    public byte[] Bytes { get; }

    public int HeaderLength { get; }

    /// <summary>Whether the payload is deflated (permessage-deflate, RFC 7692: RSV1 set); only a connection that negotiated it takes it.</summary>
    public bool Compressed { get; }

    /// <summary>The message itself, without the frame's header.</summary>
    public ReadOnlyMemory<byte> Payload => Bytes.AsMemory(HeaderLength);

    /// <summary>Frames <paramref name="payload"/> as one final text frame (deflated already when <paramref name="compressed"/>).</summary>
    public static PreparedFrame Text(ReadOnlySpan<byte> payload, bool compressed = false)
    {
        var header = HeaderLengthOf(payload.Length);
        var bytes = new byte[header + payload.Length];
        WriteHeader(bytes, payload.Length, compressed);
        payload.CopyTo(bytes.AsSpan(header));
        return new PreparedFrame(bytes, header, compressed);
    }

    /// <summary>Bytes of the header of a server's (unmasked) frame carrying <paramref name="payloadLength"/> bytes.</summary>
    private static int HeaderLengthOf(int payloadLength) => payloadLength switch
    {
        < 126 => 2,
        <= ushort.MaxValue => 4,
        _ => 10,
    };

    /// <summary>Writes the header of a final text frame of <paramref name="payloadLength"/> bytes.</summary>
    private static void WriteHeader(Span<byte> into, int payloadLength, bool compressed)
    {
        into[0] = compressed ? (byte)(FinText | Rsv1) : FinText;
        switch (HeaderLengthOf(payloadLength))
        {
            case 2:
                into[1] = (byte)payloadLength;
                break;
            case 4:
                into[1] = 126;
                BinaryPrimitives.WriteUInt16BigEndian(into[2..], (ushort)payloadLength);
                break;
            default:
                into[1] = 127;
                BinaryPrimitives.WriteUInt64BigEndian(into[2..], (ulong)payloadLength);
                break;
        }
    }
}
