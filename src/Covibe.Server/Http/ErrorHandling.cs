using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Covibe.Server.Http;

/// <summary>
/// Answers a service's refusal (<see cref="RequestRefusedException"/>) as the problem it describes, a body that is not
/// valid JSON (or the wrong shape) as a 400 that says so, and any other exception as a 500 that leaks nothing but says
/// what to try.
/// </summary>
internal sealed partial class ErrorHandling(IProblemDetailsService problems, ILogger<ErrorHandling> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ProblemDetails problem;
        if (exception is RequestRefusedException refused)
        {
            httpContext.Response.StatusCode = refused.Status;
            problem = refused.Errors is { } errors
                ? new HttpValidationProblemDetails(errors.ToDictionary()) { Detail = Problems.ValidationDetail }
                : new ProblemDetails { Detail = refused.Message };
            (problem.Status, problem.Type, problem.Title) = (refused.Status, Problems.TypeBase + refused.Type, refused.Title);
            foreach (var (key, value) in refused.Extensions)
            {
                problem.Extensions[key] = value;
            }
        }
        else if (exception is BadHttpRequestException bad)
        {
            httpContext.Response.StatusCode = bad.StatusCode;
            problem = new ProblemDetails
            {
                Status = bad.StatusCode,
                Type = Problems.TypeBase + "bad-request",
                Title = "The request could not be read",
                Detail = bad.InnerException is System.Text.Json.JsonException json
                    ? $"The body is not valid JSON for this route ({json.Message}). Send a JSON object as documented in docs/api.md."
                    : bad.Message,
            };
        }
        else
        {
            Unhandled(logger, httpContext.Request.Path, exception);
            httpContext.Response.StatusCode = 500;
            problem = new ProblemDetails
            {
                Status = 500,
                Type = Problems.TypeBase + "internal",
                Title = "Something went wrong on the server",
                Detail = $"The server could not complete the request. Try again; if it keeps failing, report trace id {httpContext.TraceIdentifier}.",
            };
        }
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }

    [LoggerMessage(1, LogLevel.Error, "Unhandled error on {Path}")]
    private static partial void Unhandled(ILogger logger, PathString path, Exception exception);
}
