using System.Text;
using System.Text.Json;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Hub;

namespace Covibe.Server.Tests;

/// <summary>Hub frames carry agent output with only the escaping JSON needs (fast unit tests, no server).</summary>
public sealed class HubFrameTests
{
    [Fact]
    public void Frame_OfStreamJsonOutput_EscapesQuotesShortly_AndKeepsTextAsUtf8_AndRoundTrips()
    {
        var output = "{\"type\":\"assistant\",\"text\":\"héllo <b> & 'x' 🎉\"}\n\u0001"u8.ToArray();
        var frame = AgentFrames.Frame("agent-1", "owner-1", 10, output, canControl: true, AgentFrameForm.Plain).Payload;
        var text = Encoding.UTF8.GetString(frame.Span);
        text.ShouldContain("{\\\"type\\\":\\\"assistant\\\"");
        text.ShouldNotContain("\\u0022");
        text.ShouldContain("héllo <b> & 'x' "); // (characters beyond the BMP, like the emoji, are still \u-escaped by .NET's encoders)
        text.ShouldContain("\\u0001"); // control characters are still escaped, as JSON requires
        using var parsed = JsonDocument.Parse(frame);
        Encoding.UTF8.GetBytes(parsed.RootElement.GetProperty("data").GetString()!).ShouldBe(output);
        parsed.RootElement.GetProperty("next").GetInt64().ShouldBe(10 + output.Length);
    }

    [Fact]
    public void Frame_OfBytesThatAreNotUtf8_IsBase64_AndRoundTrips()
    {
        byte[] output = [0xff, 0x00, 0x22, 0xc3];
        using var parsed = JsonDocument.Parse(AgentFrames.Frame("agent-1", "owner-1", 0, output, canControl: false, AgentFrameForm.Plain).Payload);
        parsed.RootElement.GetProperty("encoding").GetString().ShouldBe("base64");
        Convert.FromBase64String(parsed.RootElement.GetProperty("data").GetString()!).ShouldBe(output);
    }

    [Fact]
    public void AChunksFrame_IsMadeOncePerAudienceAndForm_AndSharedByEveryWatcher()
    {
        var feed = new AgentFeed("agent-1", "team-1", "owner-1", "local", null, 1024);
        var chunk = feed.AppendAt(0, "{\"type\":\"assistant\"}\n"u8)!;
        var owner = AgentFrames.Of("agent-1", "owner-1", chunk, canControl: true, AgentFrameForm.Plain);
        AgentFrames.Of("agent-1", "owner-1", chunk, canControl: true, AgentFrameForm.Plain).ShouldBeSameAs(owner);
        var teammate = AgentFrames.Of("agent-1", "owner-1", chunk, canControl: false, AgentFrameForm.Plain);
        teammate.ShouldNotBeSameAs(owner);
        using (var parsed = JsonDocument.Parse(teammate.Payload))
        {
            parsed.RootElement.GetProperty("canControl").GetBoolean().ShouldBeFalse();
        }
        var deflated = AgentFrames.Of("agent-1", "owner-1", chunk, canControl: true, AgentFrameForm.Deflated);
        AgentFrames.Of("agent-1", "owner-1", chunk, canControl: true, AgentFrameForm.Deflated).ShouldBeSameAs(deflated);
        deflated.Compressed.ShouldBeTrue();
        Inflate(deflated.Payload.ToArray()).ShouldBe(owner.Payload.ToArray());
        // Socket.IO's form too: made once, the plain frame as an event.
        var socketIo = AgentFrames.Of("agent-1", "owner-1", chunk, canControl: true, AgentFrameForm.SocketIo);
        AgentFrames.Of("agent-1", "owner-1", chunk, canControl: true, AgentFrameForm.SocketIo).ShouldBeSameAs(socketIo);
        socketIo.Payload.ToArray().ShouldBe(Covibe.Server.Features.Hub.SocketIo.SocketIoCodec.Event(owner.Payload.Span));
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"a \\\"quote\\\" and a\\ttab\"}]}}\n")]
    [InlineData("héllo <b> & 'x' 🎉 \u2028 \u0000 \u001f \u007f end")]
    [InlineData("\r\n\t\b\f/\\")]
    public void Frame_IsWhatTheSerializerWrites_ForTheSameMessage(string text)
    {
        // The frame is written from the bytes (no string); it must say exactly what the protocol's record says.
        var output = Encoding.UTF8.GetBytes(text);
        foreach (var canControl in new[] { true, false })
        {
            var frame = AgentFrames.Frame("agent-1", "owner-1", 1234567890123, output, canControl, AgentFrameForm.Plain).Payload.ToArray();
            frame.ShouldBe(HubJson.Serialize(new Covibe.Protocol.AgentOutputMessage("agent-1", "owner-1", text, canControl, 1234567890123, 1234567890123 + output.Length)));
        }
        byte[] binary = [0xff, 0xfe, .. output];
        AgentFrames.Frame("a", "o", 0, binary, false, AgentFrameForm.Plain).Payload.ToArray()
            .ShouldBe(HubJson.Serialize(new Covibe.Protocol.AgentOutputMessage("a", "o", Convert.ToBase64String(binary), false, 0, binary.Length, "base64")));
    }

    [Fact]
    public void Frame_OfALargeChunk_IsWholeAndLeavesNoLargeBufferBehind()
    {
        var output = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"type\":\"assistant\",\"text\":\"line\"}\n", 100_000)));
        var frame = AgentFrames.Frame("agent-1", "owner-1", 0, output, canControl: true, AgentFrameForm.Plain);
        using var parsed = JsonDocument.Parse(frame.Payload);
        Encoding.UTF8.GetBytes(parsed.RootElement.GetProperty("data").GetString()!).ShouldBe(output);
        // The next, small frame is right too (the thread's buffer was let go, not reused half-written).
        using var small = JsonDocument.Parse(AgentFrames.Frame("agent-1", "owner-1", 5, "x"u8, canControl: true, AgentFrameForm.Plain).Payload);
        small.RootElement.GetProperty("data").GetString().ShouldBe("x");
    }

    [Fact]
    public void ABroadcast_IsSerializedOnce_AndFramedOncePerWire_ForEveryConnection()
    {
        var made = 0;
        var broadcast = new HubBroadcast(() =>
        {
            made++;
            return "{\"type\":\"chat_message\",\"message\":\"hi\"}"u8.ToArray();
        });
        var json = broadcast.On(HubWire.Json);
        broadcast.On(HubWire.Json).ShouldBeSameAs(json, "every /ws connection writes the same frame");
        var socketIo = broadcast.On(HubWire.SocketIo);
        broadcast.On(HubWire.SocketIo).ShouldBeSameAs(socketIo, "every Socket.IO connection too: no conversion per connection");
        made.ShouldBe(1);
        System.Text.Encoding.UTF8.GetString(socketIo.Payload.Span).ShouldBe("42[\"chat_message\",{\"type\":\"chat_message\",\"message\":\"hi\"}]");
        json.Payload.ToArray().ShouldBe("{\"type\":\"chat_message\",\"message\":\"hi\"}"u8.ToArray());
    }

    private static byte[] Inflate(byte[] payload)
    {
        using var input = new MemoryStream([.. payload, 0x00, 0x00, 0xff, 0xff]);
        using var inflate = new System.IO.Compression.DeflateStream(input, System.IO.Compression.CompressionMode.Decompress);
        using var output = new MemoryStream();
        try
        {
            inflate.CopyTo(output);
        }
        catch (InvalidDataException)
        {
            // A sync-flushed stream has no final block; what came out before the end is the message.
        }
        return output.ToArray();
    }
}
