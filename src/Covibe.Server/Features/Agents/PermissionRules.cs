using System.Text.Json;
using System.Text.RegularExpressions;
using Covibe.Protocol;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// One permission rule in the shape of Claude Code's settings (<c>permissions.allow</c> / <c>deny</c>): <c>Tool</c> for any use
/// of the tool, or <c>Tool(specifier)</c>. For <c>Bash</c> the specifier is the command: exact, a prefix ending in <c>:*</c>
/// (<c>Bash(npm run:*)</c>) or a pattern with <c>*</c>; for the file tools it is a path pattern (<c>*</c> within a directory,
/// <c>**</c> across them) matched against the end of the path (<c>Edit(src/**)</c>), or from the root when it starts with
/// <c>/</c>; <c>WebFetch(domain:example.com)</c> matches that host and its subdomains.
/// </summary>
public sealed partial record PermissionRule(string Tool, string? Specifier)
{
    private static readonly HashSet<string> FileTools = new(StringComparer.Ordinal) { "Read", "Write", "Edit", "MultiEdit", "NotebookEdit", "NotebookRead", "Glob", "Grep", "LS" };

    /// <summary>A rule from its text, or null (with the reason) when it is not one.</summary>
    public static PermissionRule? Parse(string text, out string? problem)
    {
        problem = null;
        var match = Shape().Match(text.Trim());
        if (!match.Success)
        {
            problem = $"'{text}' is not a permission rule: write a tool's name (Bash, Write, Edit, Read, ...) or Tool(specifier), e.g. Bash(npm test) or Edit(src/**).";
            return null;
        }
        var specifier = match.Groups[2].Success ? match.Groups[2].Value : null;
        return new PermissionRule(match.Groups[1].Value, string.IsNullOrEmpty(specifier) || specifier == "*" ? null : specifier);
    }

    /// <summary>Whether a call of <paramref name="tool"/> with <paramref name="input"/> is one this rule speaks of.</summary>
    public bool Matches(string tool, JsonElement input)
    {
        if (!string.Equals(tool, Tool, StringComparison.Ordinal))
        {
            return false;
        }
        if (Specifier is not { } spec)
        {
            return true;
        }
        if (tool == "Bash")
        {
            var command = Field(input, "command");
            return command is not null && (spec.EndsWith(":*", StringComparison.Ordinal)
                ? command == spec[..^2] || command.StartsWith(spec[..^2] + " ", StringComparison.Ordinal)
                : spec.Contains('*', StringComparison.Ordinal) ? Glob(spec, anyDepth: true).IsMatch(command) : command == spec);
        }
        if (tool == "WebFetch" && spec.StartsWith("domain:", StringComparison.Ordinal))
        {
            var host = Uri.TryCreate(Field(input, "url"), UriKind.Absolute, out var url) ? url.Host : null;
            var domain = spec["domain:".Length..];
            return host is not null && (host.Equals(domain, StringComparison.OrdinalIgnoreCase) || host.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase));
        }
        if (FileTools.Contains(tool))
        {
            var path = Field(input, "file_path") ?? Field(input, "notebook_path") ?? Field(input, "path");
            if (path is null)
            {
                return false;
            }
            var pattern = spec.StartsWith("./", StringComparison.Ordinal) ? spec[2..] : spec;
            var regex = Glob(pattern, anyDepth: false);
            return pattern.StartsWith('/')
                ? regex.IsMatch(path)
                : regex.IsMatch(path) || Enumerable.Range(0, path.Length).Where(i => path[i] == '/').Any(i => regex.IsMatch(path[(i + 1)..]));
        }
        // Any other tool: the specifier is its input's one string value, compared as it is.
        return input.ValueKind == JsonValueKind.Object && input.EnumerateObject().Any(p => p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() == spec);
    }

    public override string ToString() => Specifier is null ? Tool : $"{Tool}({Specifier})";

    private static string? Field(JsonElement input, string name) =>
        input.ValueKind == JsonValueKind.Object && input.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static Regex Glob(string pattern, bool anyDepth)
    {
        var regex = new System.Text.StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                regex.Append(".*");
                i++;
            }
            else
            {
                regex.Append(pattern[i] == '*' ? anyDepth ? ".*" : "[^/]*" : Regex.Escape(pattern[i].ToString()));
            }
        }
        return new Regex(regex.Append('$').ToString(), RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
    }

    [GeneratedRegex(@"^([A-Za-z][A-Za-z0-9_]*(?:__[A-Za-z0-9_-]+)*)(?:\((.*)\))?$", RegexOptions.Singleline)]
    private static partial Regex Shape();
}

/// <summary>What decides a prompt before anyone is asked, and in which order.</summary>
public enum PermissionVerdict
{
    Ask,
    Allow,
    Deny,
}

/// <summary>
/// Decides a prompt the way Claude Code orders its own checks: the operator's deny rules first, then the mode, the operator's
/// allow rules and the agent's own "allow always" rules; what is left is asked.
/// </summary>
public static class PermissionDecisions
{
    /// <summary>Claude's clarifying questions come through the same prompt; the answer goes back in <c>updatedInput.answers</c>.</summary>
    public const string QuestionTool = "AskUserQuestion";

    /// <summary>Tools that only read: they pass unasked under <see cref="PermissionModes.AskButAllowReads"/>.</summary>
    public static readonly IReadOnlySet<string> ReadOnlyTools = new HashSet<string>(StringComparer.Ordinal)
    {
        "Read", "Glob", "Grep", "LS", "NotebookRead", "TodoRead", "TodoWrite", "BashOutput",
    };

    public static (PermissionVerdict Verdict, string? Reason) Decide(
        string mode, IEnumerable<PermissionRule> deny, IEnumerable<PermissionRule> allow, IEnumerable<PermissionRule> agentRules, string tool, JsonElement input)
    {
        if (deny.FirstOrDefault(r => r.Matches(tool, input)) is { } denied)
        {
            return (PermissionVerdict.Deny, $"the operator's rule {denied}");
        }
        if (tool == QuestionTool)
        {
            // Claude asks the user something: only a person can answer, whatever the mode or the rules.
            return (PermissionVerdict.Ask, null);
        }
        if (mode == PermissionModes.Bypass)
        {
            return (PermissionVerdict.Allow, "the agent's mode, bypass");
        }
        if (allow.FirstOrDefault(r => r.Matches(tool, input)) is { } allowed)
        {
            return (PermissionVerdict.Allow, $"the operator's rule {allowed}");
        }
        if (agentRules.FirstOrDefault(r => r.Matches(tool, input)) is { } always)
        {
            return (PermissionVerdict.Allow, $"the rule {always}, allowed always for this agent");
        }
        if (mode == PermissionModes.AskButAllowReads && ReadOnlyTools.Contains(tool))
        {
            return (PermissionVerdict.Allow, "the agent's mode, ask-but-allow-reads");
        }
        return (PermissionVerdict.Ask, null);
    }
}
