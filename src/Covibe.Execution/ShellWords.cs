namespace Covibe.Execution;

/// <summary>Words for a POSIX shell: each one single-quoted, so nothing in it is expanded.</summary>
public static class ShellWords
{
    /// <summary>argv as one command line: each argument quoted.</summary>
    public static string Join(IReadOnlyList<string> argv) => string.Join(' ', argv.Select(Quote));

    public static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
