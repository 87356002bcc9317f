using System.Net;
using System.Text.Json;

namespace Covibe.Server.Tests.Infrastructure;

public static class ProblemAssertions
{
    /// <summary>Asserts a ProblemDetails response with the given status and stable type, and returns its body.</summary>
    public static async Task<JsonElement> ShouldBeProblemAsync(this HttpResponseMessage reply, HttpStatusCode status, string type)
    {
        var body = await reply.Content.ReadAsStringAsync();
        reply.StatusCode.ShouldBe(status, body);
        reply.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json", body);
        var problem = JsonDocument.Parse(body).RootElement.Clone();
        problem.GetProperty("type").GetString().ShouldBe("https://covibe.dev/problems/" + type, body);
        problem.GetProperty("title").GetString().ShouldNotBeNullOrWhiteSpace();
        return problem;
    }

    /// <summary>Asserts a 400 validation problem that names <paramref name="field"/> among its errors; answers the field's messages.</summary>
    public static async Task<string> ShouldBeValidationProblemAsync(HttpResponseMessage reply, string field)
    {
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").TryGetProperty(field, out var messages).ShouldBeTrue(problem.ToString());
        return string.Join(" ", messages.EnumerateArray().Select(m => m.GetString()));
    }
}
