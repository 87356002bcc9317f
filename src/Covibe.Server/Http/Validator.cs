namespace Covibe.Server.Http;

/// <summary>Collects field errors for a ValidationProblem; trims what it accepts.</summary>
public sealed class Validator
{
    private readonly Dictionary<string, string[]> _errors = new(StringComparer.Ordinal);

    public bool IsValid => _errors.Count == 0;

    public Dictionary<string, string[]> Errors => _errors;

    public void Fail(string field, string message) => _errors[field] = [.. _errors.GetValueOrDefault(field, []), message];

    public string Text(string field, string? value, int maxLength, int minLength = 1)
    {
        var trimmed = value?.Trim() ?? "";
        if (trimmed.Length < minLength)
        {
            Fail(field, minLength == 1 ? $"'{field}' is required." : $"'{field}' must be at least {minLength} characters.");
        }
        else if (trimmed.Length > maxLength)
        {
            Fail(field, $"'{field}' must be at most {maxLength} characters.");
        }
        return trimmed;
    }

    public string Email(string field, string? value)
    {
        var email = Text(field, value, 254).ToLowerInvariant();
        if (email.Length > 0 && (!email.Contains('@', StringComparison.Ordinal) || email.StartsWith('@') || email.EndsWith('@') || email.Any(char.IsWhiteSpace)))
        {
            Fail(field, $"'{field}' must be an email address such as sarah@example.com.");
        }
        return email;
    }

    public string Password(string field, string? value)
    {
        var password = value ?? "";
        if (password.Length < 8)
        {
            Fail(field, $"'{field}' must be at least 8 characters.");
        }
        else if (password.Length > 1024)
        {
            Fail(field, $"'{field}' must be at most 1024 characters.");
        }
        return password;
    }

    /// <summary>Text from outside, safe to echo in a message or a log: control characters as '?', at most <paramref name="max"/> characters.</summary>
}
