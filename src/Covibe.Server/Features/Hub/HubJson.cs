using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Covibe.Protocol;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// How hub frames are written. They go to WebSocket clients that parse JSON, never into HTML, so
/// only what JSON requires is escaped: a <c>"</c> in an agent's output is <c>\"</c> (2 bytes), not
/// <c>\u0022</c> (6), and text outside ASCII is sent as UTF-8. Stream-json output is full of quotes.
/// </summary>
internal static class HubJson
{
    private static readonly CovibeJsonContext Context = new(new JsonSerializerOptions(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static byte[] Serialize<T>(T message) =>
        JsonSerializer.SerializeToUtf8Bytes(message, (JsonTypeInfo<T>)Context.GetTypeInfo(typeof(T))!);
}
