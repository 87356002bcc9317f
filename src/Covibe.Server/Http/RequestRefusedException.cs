namespace Covibe.Server.Http;

/// <summary>Why a request is refused, in the service's words; <see cref="ErrorHandling"/> turns each into its HTTP status.</summary>
public enum Refusal
{
    /// <summary>Fields are wrong (400, a validation problem listing them).</summary>
    Invalid,
    /// <summary>The credential presented is not good (401).</summary>
    Unauthenticated,
    /// <summary>The caller may not do this (403).</summary>
    Forbidden,
    /// <summary>What the request names does not exist for the caller (404).</summary>
    NotFound,
    /// <summary>It cannot be done in the present state (409).</summary>
    Conflict,
    /// <summary>Well formed, but what it names says no (422: a VM refused the login given).</summary>
    Unprocessable,
    /// <summary>A machine the server needs for it did not answer (502).</summary>
    Unreachable,
    /// <summary>The body is larger than the server takes (413).</summary>
    TooLarge,
    /// <summary>A limit of the caller's or their team's is reached (429).</summary>
    TooMany,
    /// <summary>What it needs of this server is down for now (503: the container engine).</summary>
    Unavailable,
}

/// <summary>
/// A request a service will not carry out, said without HTTP: services throw it, handlers let it pass, and
/// <see cref="ErrorHandling"/> answers it as the problem it describes (a stable <c>type</c>, a title, a detail that says
/// what to do). Nothing is written before it is thrown, so a refused request changes nothing.
/// </summary>
public sealed class RequestRefusedException : Exception
{
    public RequestRefusedException(Refusal kind, string type, string title, string detail) : base(detail)
    {
        (Kind, Type, Title) = (kind, type, title);
    }

    private RequestRefusedException(Dictionary<string, string[]> errors) : base("One or more validation errors occurred.")
    {
        (Kind, Type, Title, Errors) = (Refusal.Invalid, "validation", "One or more validation errors occurred.", errors);
    }

    public Refusal Kind { get; }

    /// <summary>The problem type's last segment, listed in docs/api.md.</summary>
    public string Type { get; }

    public string Title { get; }

    /// <summary>The fields at fault, for <see cref="Refusal.Invalid"/>.</summary>
    public IReadOnlyDictionary<string, string[]>? Errors { get; }

    /// <summary>More members of the problem, for a client to act on (the host keys a VM offers).</summary>
    public Dictionary<string, object?> Extensions { get; } = [];

    /// <summary>The fields <paramref name="validator"/> found wrong.</summary>
    public static RequestRefusedException Invalid(Validator validator) => new(validator.Errors);

    /// <summary>One field at fault.</summary>
    public static RequestRefusedException Field(string field, string message) => new(new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>The same refusal with each field named under <paramref name="prefix"/> (a field of an item of a list).</summary>
    public RequestRefusedException Under(string prefix) =>
        Errors is null ? this : new(Errors.ToDictionary(e => prefix + e.Key, e => e.Value));

    public static RequestRefusedException NotFound(string what, string detail) => new(Refusal.NotFound, "not-found", $"{what} not found", detail);

    public static RequestRefusedException Forbidden(string detail) => new(Refusal.Forbidden, "forbidden", "Not allowed", detail);

    public int Status => Kind switch
    {
        Refusal.Invalid => 400,
        Refusal.Unauthenticated => 401,
        Refusal.Forbidden => 403,
        Refusal.NotFound => 404,
        Refusal.Unprocessable => 422,
        Refusal.Unreachable => 502,
        Refusal.TooLarge => 413,
        Refusal.TooMany => 429,
        Refusal.Unavailable => 503,
        _ => 409,
    };
}
