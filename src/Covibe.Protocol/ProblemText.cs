using System.Text.Json;

namespace Covibe.Protocol;

/// <summary>
/// The wire's error shape (RFC 9457 problem details, with validation <c>errors</c>) read back as the lines a person reads:
/// the title and detail, then each field's message. What the CLI and the runner print when the server refuses.
/// </summary>
public static class ProblemText
{
    public static async Task<string> DescribeAsync(HttpResponseMessage reply, CancellationToken cancellationToken) =>
        Describe(await reply.Content.ReadAsStringAsync(cancellationToken), reply.ReasonPhrase, (int)reply.StatusCode);

    public static string Describe(string text, string? reasonPhrase, int status)
    {
        try
        {
            using var problem = JsonDocument.Parse(text);
            var root = problem.RootElement;
            var title = root.TryGetProperty("title", out var t) ? t.GetString() : reasonPhrase;
            var detail = root.TryGetProperty("detail", out var d) ? d.GetString() : null;
            var lines = new List<string> { detail is null ? $"{title}" : $"{title}: {detail}" };
            if (root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object)
            {
                lines.AddRange(errors.EnumerateObject().SelectMany(e => e.Value.EnumerateArray().Select(m => $"  {m.GetString()}")));
            }
            return string.Join('\n', lines);
        }
        catch (JsonException)
        {
            return $"The server answered {status} {reasonPhrase}.";
        }
    }
}
