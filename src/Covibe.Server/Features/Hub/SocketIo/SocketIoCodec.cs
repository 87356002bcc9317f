using System.Buffers.Text;
using System.Text;

namespace Covibe.Server.Features.Hub.SocketIo;

/// <summary>Engine.IO v4 packet types (socketio/engine.io-protocol): the first character of each packet.</summary>
internal enum EnginePacketType : byte
{
    Open = (byte)'0',
    Close = (byte)'1',
    Ping = (byte)'2',
    Pong = (byte)'3',
    Message = (byte)'4',
    Upgrade = (byte)'5',
    Noop = (byte)'6',
}

/// <summary>Socket.IO v5 packet types (socketio/socket.io-protocol), carried in an Engine.IO message.</summary>
internal enum SocketIoPacketType
{
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

/// <summary>A Socket.IO packet as read: its namespace (<c>/</c> when none is written), acknowledgement id and JSON payload.</summary>
internal readonly record struct SocketIoPacket(SocketIoPacketType Type, string Namespace, long? AckId, int Attachments, ReadOnlyMemory<byte> Payload);

/// <summary>
/// The two wire formats under Covibe's Socket.IO endpoint, as bytes: Engine.IO v4 packets (a type digit and data; several
/// in one long-polling body, separated by <c>\x1e</c>) and Socket.IO v5 packets inside Engine.IO messages
/// (<c>&lt;type&gt;[&lt;attachments&gt;-][&lt;namespace&gt;,][&lt;ack id&gt;][JSON]</c>). Hub frames become events without being
/// parsed again: a frame is <c>{"type":"chat_message",...}</c>, its type first, so its event is
/// <c>42["chat_message",{"type":"chat_message",...}]</c>.
/// </summary>
internal static class SocketIoCodec
{
    /// <summary>The record separator between packets of a long-polling payload.</summary>
    public const byte Separator = 0x1e;

    public static readonly byte[] Ping = [(byte)EnginePacketType.Ping];
    public static readonly byte[] Noop = [(byte)EnginePacketType.Noop];
    public static readonly byte[] Close = [(byte)EnginePacketType.Close];
    public static readonly byte[] ProbePong = "3probe"u8.ToArray();
    public static readonly byte[] Disconnect = "41"u8.ToArray();

    private const int MaxAckIdDigits = 15;
    private static readonly byte[] TypeStart = "{\"type\":\""u8.ToArray();

    /// <summary>Splits a long-polling body into its packets (empty ones are skipped).</summary>
    public static List<ReadOnlyMemory<byte>> SplitPayload(ReadOnlyMemory<byte> body)
    {
        var packets = new List<ReadOnlyMemory<byte>>();
        var rest = body;
        while (rest.Length > 0)
        {
            var end = rest.Span.IndexOf(Separator);
            var packet = end < 0 ? rest : rest[..end];
            if (packet.Length > 0)
            {
                packets.Add(packet);
            }
            rest = end < 0 ? ReadOnlyMemory<byte>.Empty : rest[(end + 1)..];
        }
        return packets;
    }

    /// <summary>Joins packets into one long-polling body.</summary>
    public static byte[] JoinPayload(IReadOnlyList<ReadOnlyMemory<byte>> packets)
    {
        var length = packets.Count - 1;
        foreach (var packet in packets)
        {
            length += packet.Length;
        }
        var body = new byte[Math.Max(length, 0)];
        var at = 0;
        for (var i = 0; i < packets.Count; i++)
        {
            if (i > 0)
            {
                body[at++] = Separator;
            }
            packets[i].Span.CopyTo(body.AsSpan(at));
            at += packets[i].Length;
        }
        return body;
    }

    /// <summary>The Engine.IO packet's type and data, or false for one that is not an Engine.IO packet.</summary>
    public static bool TryReadEngine(ReadOnlyMemory<byte> packet, out EnginePacketType type, out ReadOnlyMemory<byte> data)
    {
        type = default;
        data = default;
        if (packet.Length == 0 || packet.Span[0] is < (byte)'0' or > (byte)'6')
        {
            return false;
        }
        type = (EnginePacketType)packet.Span[0];
        data = packet[1..];
        return true;
    }

    /// <summary>The Socket.IO packet in an Engine.IO message's data, or why it is not one.</summary>
    public static bool TryReadSocketIo(ReadOnlyMemory<byte> data, out SocketIoPacket packet, out string? error)
    {
        packet = default;
        var span = data.Span;
        if (span.Length == 0 || span[0] is < (byte)'0' or > (byte)'6')
        {
            error = "A Socket.IO packet starts with its type, a digit from 0 to 6.";
            return false;
        }
        var type = (SocketIoPacketType)(span[0] - '0');
        var at = 1;
        var attachments = 0;
        if (type is SocketIoPacketType.BinaryEvent or SocketIoPacketType.BinaryAck)
        {
            var dash = span[at..].IndexOf((byte)'-');
            if (dash <= 0 || !int.TryParse(span.Slice(at, dash), out attachments))
            {
                error = "A binary packet names how many attachments follow, then '-'.";
                return false;
            }
            at += dash + 1;
        }
        var nsp = "/";
        if (at < span.Length && span[at] == (byte)'/')
        {
            var comma = span[at..].IndexOf((byte)',');
            var end = comma < 0 ? span.Length : at + comma;
            nsp = Encoding.UTF8.GetString(span[at..end]);
            at = comma < 0 ? span.Length : end + 1;
        }
        long? ackId = null;
        var digits = 0;
        while (at + digits < span.Length && span[at + digits] is >= (byte)'0' and <= (byte)'9')
        {
            digits++;
        }
        if (digits > 0)
        {
            if (digits > MaxAckIdDigits)
            {
                error = "The acknowledgement id is too long.";
                return false;
            }
            ackId = long.Parse(span.Slice(at, digits));
            at += digits;
        }
        packet = new SocketIoPacket(type, nsp, ackId, attachments, data[at..]);
        error = null;
        return true;
    }

    /// <summary>Engine.IO's open packet: the session id, the upgrades on offer and the heartbeat.</summary>
    public static byte[] Open(string sid, bool canUpgrade, int pingIntervalMs, int pingTimeoutMs, int maxPayload) =>
        Encoding.UTF8.GetBytes("0{\"sid\":\"" + sid + "\",\"upgrades\":" + (canUpgrade ? "[\"websocket\"]" : "[]") +
            ",\"pingInterval\":" + pingIntervalMs + ",\"pingTimeout\":" + pingTimeoutMs + ",\"maxPayload\":" + maxPayload + "}");

    /// <summary>Socket.IO's CONNECT answer for the main namespace.</summary>
    public static byte[] Connected(string sid) => Encoding.UTF8.GetBytes("40{\"sid\":\"" + sid + "\"}");

    /// <summary>Socket.IO's CONNECT_ERROR: <paramref name="json"/> is the <c>data</c> the client's <c>connect_error</c> sees beside the message.</summary>
    public static byte[] ConnectError(string nsp, string message, byte[]? json = null)
    {
        var prefix = nsp == "/" ? "44" : "44" + nsp + ",";
        var text = "\"" + System.Text.Json.JsonEncodedText.Encode(message) + "\"";
        return Encoding.UTF8.GetBytes(prefix + "{\"message\":" + text + (json is null ? "}" : ",\"data\":" + Encoding.UTF8.GetString(json) + "}"));
    }

    /// <summary>
    /// The event of a hub frame: <c>42["&lt;type&gt;",&lt;frame&gt;]</c> (the frame keeps its <c>type</c>).
    /// </summary>
    public static byte[] Event(ReadOnlySpan<byte> hubFrame)
    {
        var type = TypeOf(hubFrame);
        var frame = new byte[4 + type.Length + 2 + hubFrame.Length + 1];
        "42[\""u8.CopyTo(frame);
        type.CopyTo(frame.AsSpan(4));
        var at = 4 + type.Length;
        frame[at++] = (byte)'"';
        frame[at++] = (byte)',';
        hubFrame.CopyTo(frame.AsSpan(at));
        frame[^1] = (byte)']';
        return frame;
    }

    /// <summary>The acknowledgement of the client's event <paramref name="ackId"/> carrying a hub frame: <c>43&lt;id&gt;[&lt;frame&gt;]</c>.</summary>
    public static byte[] Ack(long ackId, byte[] hubFrame)
    {
        Span<byte> id = stackalloc byte[20];
        Utf8Formatter.TryFormat(ackId, id, out var digits);
        var frame = new byte[2 + digits + 1 + hubFrame.Length + 1];
        "43"u8.CopyTo(frame);
        id[..digits].CopyTo(frame.AsSpan(2));
        frame[2 + digits] = (byte)'[';
        hubFrame.CopyTo(frame, 3 + digits);
        frame[^1] = (byte)']';
        return frame;
    }

    /// <summary>A hub frame's <c>type</c> (its first property, always: <see cref="Protocol.HubMessage"/>).</summary>
    public static ReadOnlySpan<byte> TypeOf(ReadOnlySpan<byte> hubFrame)
    {
        if (!hubFrame.StartsWith(TypeStart))
        {
            throw new ArgumentException("Not a hub frame: it must start with its type.", nameof(hubFrame));
        }
        var rest = hubFrame[TypeStart.Length..];
        var end = rest.IndexOf((byte)'"');
        return end < 0 ? throw new ArgumentException("Not a hub frame: its type does not end.", nameof(hubFrame)) : rest[..end];
    }
}
