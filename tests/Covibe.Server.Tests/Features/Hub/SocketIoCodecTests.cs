using System.Text;
using System.Text.Json;
using Covibe.Server.Features.Hub.SocketIo;

namespace Covibe.Server.Tests;

/// <summary>The Engine.IO 4 / Socket.IO 5 wire formats, with the examples of their protocol documents.</summary>
public sealed class SocketIoCodecTests
{
    private static ReadOnlyMemory<byte> Bytes(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void PollingPayload_SplitsOnTheRecordSeparator_AndJoinsBack()
    {
        var packets = SocketIoCodec.SplitPayload(Bytes("4hello\u001e2\u001e4world"));
        packets.Select(p => Encoding.UTF8.GetString(p.Span)).ShouldBe(["4hello", "2", "4world"]);
        Encoding.UTF8.GetString(SocketIoCodec.JoinPayload([.. packets.Select(p => p.ToArray())])).ShouldBe("4hello\u001e2\u001e4world");
        SocketIoCodec.JoinPayload([SocketIoCodec.Noop]).ShouldBe("6"u8.ToArray());
    }

    [Theory]
    [InlineData("0", 0, "/", null, "")]
    [InlineData("0{\"token\":\"123\"}", 0, "/", null, "{\"token\":\"123\"}")]
    [InlineData("0/admin,{\"token\":\"123\"}", 0, "/admin", null, "{\"token\":\"123\"}")]
    [InlineData("2[\"foo\"]", 2, "/", null, "[\"foo\"]")]
    [InlineData("212[\"foo\"]", 2, "/", 12L, "[\"foo\"]")]
    [InlineData("2/admin,13[\"bar\"]", 2, "/admin", 13L, "[\"bar\"]")]
    [InlineData("1", 1, "/", null, "")]
    [InlineData("1/admin,", 1, "/admin", null, "")]
    public void SocketIoPackets_ReadAsTheProtocolWritesThem(string text, int type, string nsp, long? ackId, string payload)
    {
        SocketIoCodec.TryReadSocketIo(Bytes(text), out var packet, out var error).ShouldBeTrue(error);
        packet.Type.ShouldBe((SocketIoPacketType)type);
        packet.Namespace.ShouldBe(nsp);
        packet.AckId.ShouldBe(ackId);
        Encoding.UTF8.GetString(packet.Payload.Span).ShouldBe(payload);
    }

    [Fact]
    public void BinaryPackets_SayHowManyAttachmentsFollow()
    {
        SocketIoCodec.TryReadSocketIo(Bytes("52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"), out var packet, out _).ShouldBeTrue();
        packet.Type.ShouldBe(SocketIoPacketType.BinaryEvent);
        packet.Attachments.ShouldBe(2);
        packet.Namespace.ShouldBe("/admin");
    }

    [Theory]
    [InlineData("")]
    [InlineData("9[\"x\"]")]
    [InlineData("x")]
    [InlineData("5[\"no count\"]")]
    [InlineData("21234567890123456[\"x\"]")]
    public void MalformedPackets_AreRefusedWithAReason(string text)
    {
        SocketIoCodec.TryReadSocketIo(Bytes(text), out _, out var error).ShouldBeFalse();
        error.ShouldNotBeNullOrWhiteSpace();
    }

    [Fact]
    public void EnginePackets_AreATypeDigitAndData()
    {
        SocketIoCodec.TryReadEngine(Bytes("2probe"), out var type, out var data).ShouldBeTrue();
        type.ShouldBe(EnginePacketType.Ping);
        Encoding.UTF8.GetString(data.Span).ShouldBe("probe");
        SocketIoCodec.TryReadEngine(Bytes("7"), out _, out _).ShouldBeFalse();
        SocketIoCodec.TryReadEngine(ReadOnlyMemory<byte>.Empty, out _, out _).ShouldBeFalse();
    }

    [Fact]
    public void HubFrames_BecomeEventsNamedByTheirType_AndAcknowledgements()
    {
        var frame = "{\"type\":\"chat_message\",\"message\":\"hi \\\"there\\\"\"}"u8.ToArray();
        var evt = Encoding.UTF8.GetString(SocketIoCodec.Event(frame));
        evt.ShouldStartWith("42");
        using (var args = JsonDocument.Parse(evt[2..]))
        {
            args.RootElement[0].GetString().ShouldBe("chat_message");
            args.RootElement[1].GetProperty("message").GetString().ShouldBe("hi \"there\"");
        }
        Encoding.UTF8.GetString(SocketIoCodec.Ack(12, frame)).ShouldBe("4312[" + Encoding.UTF8.GetString(frame) + "]");
        Should.Throw<ArgumentException>(() => SocketIoCodec.Event("[1,2]"u8.ToArray()));
    }

    [Fact]
    public void HandshakeAndConnectPackets_AreWhatClientsParse()
    {
        using var open = JsonDocument.Parse(Encoding.UTF8.GetString(SocketIoCodec.Open("abc", canUpgrade: true, 25000, 20000, 1_000_000))[1..]);
        open.RootElement.GetProperty("sid").GetString().ShouldBe("abc");
        open.RootElement.GetProperty("upgrades")[0].GetString().ShouldBe("websocket");
        open.RootElement.GetProperty("pingInterval").GetInt32().ShouldBe(25000);
        open.RootElement.GetProperty("maxPayload").GetInt32().ShouldBe(1_000_000);
        Encoding.UTF8.GetString(SocketIoCodec.Connected("s1")).ShouldBe("40{\"sid\":\"s1\"}");
        using var refused = JsonDocument.Parse(Encoding.UTF8.GetString(SocketIoCodec.ConnectError("/", "No \"token\"", "{\"code\":\"auth_failed\"}"u8.ToArray()))[2..]);
        refused.RootElement.GetProperty("message").GetString().ShouldBe("No \"token\"");
        refused.RootElement.GetProperty("data").GetProperty("code").GetString().ShouldBe("auth_failed");
        Encoding.UTF8.GetString(SocketIoCodec.ConnectError("/admin", "Invalid namespace")).ShouldBe("44/admin,{\"message\":\"Invalid namespace\"}");
    }
}
