using System.CommandLine;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe agent diff ID [--stat] [PATH]</c>: what an agent on the team's repository has changed against where its branch
/// started: the unified diff (of one file, or all), or with <c>--stat</c> the files and their lines added and removed.
/// </summary>
internal static class AgentDiffCommand
{
    public static Command Create(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var path = new Argument<string?>("path") { Description = "Only this file's diff", Arity = ArgumentArity.ZeroOrOne };
        var stat = new Option<bool>("--stat") { Description = "The files changed and their lines added and removed, not the diff" };
        var command = new Command("diff", "Show what an agent on the team's repository has changed (any teammate's)") { id, path, stat };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(id)!, ct);
            if (parse.GetValue(stat))
            {
                Print(await client.GetAsync($"api/agent/{agentId}/changes", CovibeJsonContext.Default.AgentChangesDto, ct));
                return;
            }
            var file = parse.GetValue(path);
            Console.Write(await client.GetTextAsync($"api/agent/{agentId}/changes/diff" + (file is null ? "" : "?path=" + Uri.EscapeDataString(file)), ct));
        });
        return command;
    }

    private static void Print(AgentChangesDto changes)
    {
        var on = changes.Branch is null ? "" : $" (on {changes.Branch}{(changes.Branch == changes.WorkBranch ? "" : $", not its own branch {changes.WorkBranch}")})";
        Console.WriteLine($"{changes.Files.Length} file{(changes.Files.Length == 1 ? "" : "s")} changed, {changes.Added} insertions(+), {changes.Removed} deletions(-) since {changes.BaseCommit?[..7]}{on}");
        var width = changes.Files.Length == 0 ? 0 : changes.Files.Max(f => f.Path.Length);
        foreach (var file in changes.Files)
        {
            var lines = file.Added is null ? "binary" : $"+{file.Added} -{file.Removed}";
            var renamed = file.OldPath is null ? "" : $" (from {file.OldPath})";
            Console.WriteLine($" {file.Status} {file.Path.PadRight(width)}  {lines}{renamed}");
        }
        if (changes.Truncated)
        {
            Console.WriteLine(" ... and more files");
        }
    }
}
