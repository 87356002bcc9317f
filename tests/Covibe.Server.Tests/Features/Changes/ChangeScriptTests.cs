using Covibe.Server.Features.Changes;

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
}
