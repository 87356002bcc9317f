namespace Covibe.Web;

/// <summary>
/// Text from outside (a client's message, a runner's hello, a VM's answer) made safe to echo in an error or a log line:
/// control characters become <c>?</c> (no forged lines, no terminal escapes) and it is cut at <c>max</c> characters.
/// </summary>
public static class PrintableText
{
    public static string Of(string value, int max = 100) => new([.. value.Take(max).Select(c => char.IsControl(c) ? '?' : c)]);

    /// <summary>Null stays null (an optional field the sender left out).</summary>
    public static string? OfOptional(string? value, int max = 100) => value is null ? null : Of(value, max);
}
