using System.Diagnostics;
using Covibe.Server.Features.Changes;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Git;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Reading what git printed about an agent's tree: statuses, line counts, renames, binaries, the cap.</summary>
public sealed class ChangeScriptTests
{
    private const string Head = "0123456789abcdef0123456789abcdef01234567";

    private static string Output(string statuses, string numbers, string head = Head, string branch = "covibe/abc-task") =>
        $"{head}\n{branch}\n{ChangeScript.Separator}{statuses}{ChangeScript.Separator}{numbers}";

    [Fact]
    public void Summary_ListsEachFileWithItsLines_RenamesAndBinariesIncluded()
    {
        var summary = ChangeScript.Parse(Output(
            "M\0src/app.js\0A\0new file.txt\0D\0old.txt\0R087\0a/name.js\0b/name.js\0A\0logo.png\0",
            "3\t1\tsrc/app.js\0" + "2\t0\tnew file.txt\0" + "0\t5\told.txt\0" + "1\t1\t\0a/name.js\0b/name.js\0" + "-\t-\tlogo.png\0"), 100);
        (summary.Head, summary.Branch, summary.Truncated).ShouldBe((Head, "covibe/abc-task", false));
        summary.Files.Select(f => (f.Path, f.Status, f.Added, f.Removed, f.OldPath)).ShouldBe(
        [
            ("b/name.js", "R", 1, 1, "a/name.js"),
            ("logo.png", "A", null, null, null),
            ("new file.txt", "A", 2, 0, null),
            ("old.txt", "D", 0, 5, null),
            ("src/app.js", "M", 3, 1, null),
        ]);
        (summary.Added, summary.Removed).ShouldBe((6, 7));
    }

    [Fact]
    public void Summary_OfAnUntouchedTree_IsEmpty_AndADetachedOneHasNoBranch()
    {
        var summary = ChangeScript.Parse(Output("", "", branch: ""), 100);
        (summary.Files.Length, summary.Added, summary.Removed, summary.Branch).ShouldBe((0, 0, 0, null));
    }

    [Fact]
    public void Summary_ListsAtMostTheCap_ButCountsEveryLine()
    {
        var statuses = string.Concat(Enumerable.Range(0, 5).Select(i => $"A\0f{i}\0"));
        var numbers = string.Concat(Enumerable.Range(0, 5).Select(i => $"1\t0\tf{i}\0"));
        var summary = ChangeScript.Parse(Output(statuses, numbers), 3);
        (summary.Files.Length, summary.Truncated, summary.Added).ShouldBe((3, true, 5));
    }

    [Fact]
    public void Output_ThatIsNotASummary_IsRefused() =>
        Should.Throw<FormatException>(() => ChangeScript.Parse("fatal: not a git repository", 10));

    [Fact]
    public async Task Update_LeavesWorkNotCommittedAlone_AndAConflictMarkedInTheTree_OnTheBranchAsItWas()
    {
        using var source = GitRepo.Create();
        var start = source.Commit("base", new() { ["f.txt"] = "a\nb\nc\n" });
        var root = Directory.CreateTempSubdirectory("covibe-script-");
        try
        {
            var (mirror, tree, scratch) = (Path.Combine(root.FullName, "mirror.git"), Path.Combine(root.FullName, "tree"), Path.Combine(root.FullName, "scratch"));
            Directory.CreateDirectory(scratch);
            source.Git("clone", "-q", "--bare", source.Path, mirror);
            source.Git("clone", "-q", "--shared", "-b", "main", mirror, tree);
            source.Git("-C", tree, "checkout", "-q", "-b", "covibe/x");
            File.WriteAllText(Path.Combine(tree, "f.txt"), "A\nb\nc\n");
            var (code, work) = Run(tree, scratch, mirror, start, "commit", start);
            code.ShouldBe(0);
            work = work.Trim();
            source.Git("--git-dir", mirror, "fetch", "-q", Path.Combine(scratch, "git"), $"refs/heads/commit:refs/heads/covibe/x");
            var moved = source.Commit("base moved", new() { ["f.txt"] = "Z\nb\nc\n" });
            source.Git("--git-dir", mirror, "fetch", "-q", source.Path, "main:main");
            var merge = await new GitMirror(Path.Combine(root.FullName, "home")).MergeTreeAsync(mirror, "refs/heads/covibe/x", "refs/heads/main", CancellationToken.None);
            merge.Conflicts.ShouldBe(["f.txt"]);
            var conflicted = merge.Tree;

            // A file written since the commit: nothing moves, the file stays.
            File.WriteAllText(Path.Combine(tree, "notes.txt"), "mine");
            Run(tree, scratch, mirror, start, "update", $"{work} {conflicted} {moved} covibe/x conflicts").Code.ShouldBe(ChangeScript.NotCommitted);
            File.ReadAllText(Path.Combine(tree, "f.txt")).ShouldBe("A\nb\nc\n");
            File.ReadAllText(Path.Combine(tree, "notes.txt")).ShouldBe("mine");

            // All committed: the conflict lands marked in the tree, its branch where it was, the base as the merge in progress.
            File.Delete(Path.Combine(tree, "notes.txt"));
            Run(tree, scratch, mirror, start, "update", $"{work} {conflicted} {moved} covibe/x conflicts").Code.ShouldBe(0);
            File.ReadAllText(Path.Combine(tree, "f.txt")).ShouldContain("<<<<<<< ");
            source.Git("-C", tree, "rev-parse", "HEAD").Trim().ShouldBe(work);
            source.Git("-C", tree, "rev-parse", "MERGE_HEAD").Trim().ShouldBe(moved);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void TheMessageProposed_IsTheTasksFirstLine_ThenTheAgentsSummary_ThenTheTask()
    {
        Agent Agent(string task, string? summary) => new() { Id = "a", TeamId = "t", UserId = "u", Type = "claude", Task = task, Status = "completed", Backend = "local", WorkingDirectory = "w", Summary = summary };
        AgentBranchActions.Proposed(Agent("Fix the login", null)).ShouldBe("Fix the login");
        AgentBranchActions.Proposed(Agent("Fix the login", "Fixed the redirect loop.")).ShouldBe("Fix the login\n\nFixed the redirect loop.");
        AgentBranchActions.Proposed(Agent("Fix the login\r\nIt loops on Safari", "Fixed it.")).ShouldBe("Fix the login\n\nFixed it.\n\nTask:\nFix the login\nIt loops on Safari");
        AgentBranchActions.Proposed(Agent(new string('x', 100), null)).Split('\n')[0].Length.ShouldBe(72);
    }

    private static (int Code, string Output) Run(string tree, string scratch, string mirror, string start, string what, string argument)
    {
        var info = new ProcessStartInfo(ChangeScript.Argv(tree, scratch, Path.Combine(mirror, "objects"), start, what, argument)[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in ChangeScript.Argv(tree, scratch, Path.Combine(mirror, "objects"), start, what, argument).Skip(1))
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["HOME"] = scratch;
        info.Environment["COVIBE_MESSAGE"] = "work";
        foreach (var who in (string[])["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"])
        {
            info.Environment[who] = "Sarah";
        }
        foreach (var who in (string[])["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"])
        {
            info.Environment[who] = "sarah@example.com";
        }
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd();
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}
