using Microsoft.AspNetCore.Http.HttpResults;

namespace Covibe.Server.Http;

/// <summary>
/// Every non-2xx response is <c>application/problem+json</c> with a stable <c>type</c>
/// (listed in docs/api.md), a title, and a detail that tells the user what to do.
/// </summary>
public static class Problems
{
    public const string TypeBase = "https://covibe.dev/problems/";

    public static ProblemHttpResult Create(int status, string type, string title, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, title: title, type: TypeBase + type);

    public static ProblemHttpResult BadRequest(string type, string title, string detail) => Create(400, type, title, detail);

    public static ProblemHttpResult Unauthorized(string type, string detail) => Create(401, type, "Not signed in", detail);

    public static ProblemHttpResult Forbidden(string detail) => Create(403, "forbidden", "Not allowed", detail);

    public static ProblemHttpResult NotFound(string what, string detail) => Create(404, "not-found", $"{what} not found", detail);

    public static ProblemHttpResult Conflict(string type, string title, string detail) => Create(409, type, title, detail);

    public static ValidationProblem Validation(Dictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors, detail: ValidationDetail, type: TypeBase + "validation");

    /// <summary>The same body as <see cref="Validation"/>, typed as a plain problem for handlers that return only problems.</summary>
    public static ProblemHttpResult ValidationAsProblem(Dictionary<string, string[]> errors) =>
        TypedResults.Problem(new HttpValidationProblemDetails(errors)
        {
            Status = 400,
            Type = TypeBase + "validation",
            Title = "One or more validation errors occurred.",
            Detail = ValidationDetail,
        });

    internal const string ValidationDetail = "Fix the fields listed in 'errors' and send the request again.";
}
