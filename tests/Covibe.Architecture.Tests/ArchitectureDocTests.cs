using System.Text.RegularExpressions;

namespace Covibe.Architecture.Tests;

/// <summary>docs/architecture.md draws the rooms as the code has them: the diagram is checked, not trusted.</summary>
public sealed partial class ArchitectureDocTests
{
    [Fact]
    public void TheRoomsDiagram_DrawsEveryArrowTheCodeHas_AndNoOther()
    {
        var arrows = Rooms.CrossingUses().Select(u => (u.From, u.To)).ToHashSet();
        var needed = Rooms.WithoutShortcuts(arrows);
        var doc = File.ReadAllText(Path.Combine(Sources.Root, "docs", "architecture.md"));
        var block = Diagram().Match(doc);
        block.Success.ShouldBeTrue("docs/architecture.md has a ```mermaid block after <!-- rooms: checked by Covibe.Architecture.Tests -->");
        var drawn = Arrow().Matches(block.Groups[1].Value).Select(m => (m.Groups[1].Value, m.Groups[2].Value)).ToHashSet();

        var expected = string.Join('\n', needed.Order().Select(a => $"  {a.From} --> {a.To}"));
        drawn.SetEquals(needed).ShouldBeTrue($"redraw the rooms in docs/architecture.md with these arrows (each room's direct needs; the rest follow):\n{expected}\n");
    }

    [Fact]
    public void WithoutShortcuts_KeepsOnlyArrowsNoLongerPathImplies()
    {
        HashSet<(string, string)> arrows = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("a", "d")];
        Rooms.WithoutShortcuts(arrows).ShouldBe([("a", "b"), ("b", "c"), ("c", "d")], ignoreOrder: true);
        Arrow().Count("  Agents --> Auth\n  Hub-->Events\n  x[\"label\"]").ShouldBe(2);
    }

    [GeneratedRegex(@"<!-- rooms: checked by Covibe\.Architecture\.Tests -->\s*```mermaid\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex Diagram();

    [GeneratedRegex(@"^\s*(\w+)\s*-->\s*(\w+)\s*$", RegexOptions.Multiline)]
    private static partial Regex Arrow();
}
