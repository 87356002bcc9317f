using System.Text;
using System.Text.Json;
using Covibe.Server.Features.Agents;

namespace Covibe.Server.Tests;

/// <summary>Hub frames carry agent output with only the escaping JSON needs (fast unit tests, no server).</summary>
public sealed class HubFrameTests
{
    [Fact]
    public void Frame_OfStreamJsonOutput_EscapesQuotesShortly_AndKeepsTextAsUtf8_AndRoundTrips()
    {
        var output = "{\"type\":\"assistant\",\"text\":\"héllo <b> & 'x' 🎉\"}\n\u0001"u8.ToArray();
        var frame = AgentFeed.Frame("agent-1", "owner-1", 10, output, canControl: true);
        var text = Encoding.UTF8.GetString(frame);
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
        using var parsed = JsonDocument.Parse(AgentFeed.Frame("agent-1", "owner-1", 0, output, canControl: false));
        parsed.RootElement.GetProperty("encoding").GetString().ShouldBe("base64");
        Convert.FromBase64String(parsed.RootElement.GetProperty("data").GetString()!).ShouldBe(output);
    }
}
