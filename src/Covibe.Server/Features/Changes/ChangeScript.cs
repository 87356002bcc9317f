using System.Globalization;
using Covibe.Protocol;

namespace Covibe.Server.Features.Changes;

/// <summary>What a tree has checked out, the files changed (the first of them), and the lines added and removed in all.</summary>
public sealed record ChangeSummary(string? Head, string? Branch, ChangedFileDto[] Files, bool Truncated, int Added, int Removed);

/// <summary>
/// How an agent's changes are read: one POSIX sh script, run where the agent's files are with the agent's own rights (in
/// the sandbox), that stages the whole work tree into an index and objects of the server's (a scratch repository that
/// borrows the team's mirror, never the agent's <c>.git</c>) and compares it with the commit the branch started from.
/// Positional arguments only: <c>$1</c> the tree, <c>$2</c> the scratch directory, <c>$3</c> the mirror's objects,
/// <c>$4</c> the base commit, <c>$5</c> <c>summary</c>, <c>diff</c>, <c>commit</c> or <c>update</c>, <c>$6</c> a path (diff;
/// empty: all), the parents (commit: the tree as it is, committed on them with <c>COVIBE_MESSAGE</c> and the author in the
/// environment, left at the scratch's <c>refs/heads/commit</c>; exit 7 when nothing differs from a single parent), or, for
/// update, "branch-commit target base-commit branch merged|conflicts": the tree, if it is exactly its branch's commit (else
/// exit 8), checked out on its branch and moved to the target (a merge commit, or a tree with conflict markers to resolve,
/// then with the base as <c>MERGE_HEAD</c>) by git's own two-tree merge, which stops rather than overwrite a file that
/// changed meanwhile (exit 9).
/// </summary>
public static class ChangeScript
{
    /// <summary>Separates the parts of a summary (ASCII record separator).</summary>
    public const char Separator = '\u001e';

    /// <summary>The tree is not there (yet): its clone has not been made.</summary>
    public const int NoTree = 4;

    public const string Script = """
        tree=$1; scratch=$2; objects=$3; base=$4; what=$5; path=$6
        # On a VM the paths are relative to its user's home.
        case $tree in /*) ;; *) tree=$HOME/$tree;; esac
        case $scratch in /*) ;; *) scratch=$HOME/$scratch;; esac
        case $objects in /*) ;; *) objects=$HOME/$objects;; esac
        export GIT_DIR="$scratch/git" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_LITERAL_PATHSPECS=1 GIT_OPTIONAL_LOCKS=0 GIT_TERMINAL_PROMPT=0
        if [ ! -f "$GIT_DIR/HEAD" ]; then
          git init --quiet --bare "$GIT_DIR" && printf '%s\n' "$objects" > "$GIT_DIR/objects/info/alternates" || exit 3
        fi
        export GIT_INDEX_FILE="$scratch/index" GIT_WORK_TREE="$tree"
        cd "$tree" 2>/dev/null || exit 4
        git add --all --ignore-errors . >/dev/null 2>&1
        if [ "$what" = commit ]; then
          set -- $path
          tree=$(git write-tree) || exit 6
          [ $# -eq 1 ] && [ "$(git rev-parse --verify --quiet "$1^{tree}")" = "$tree" ] && exit 7
          parents=; for parent in "$@"; do parents="$parents -p $parent"; done
          commit=$(printf '%s\n' "$COVIBE_MESSAGE" | git commit-tree "$tree" $parents) || exit 6
          git update-ref refs/heads/commit "$commit" || exit 6
          printf '%s\n' "$commit"
          exit 0
        fi
        if [ "$what" = update ]; then
          set -- $path
          [ "$(git write-tree)" = "$(git rev-parse --verify --quiet "$1^{tree}")" ] || exit 8
          unset GIT_DIR GIT_INDEX_FILE GIT_WORK_TREE
          git symbolic-ref HEAD "refs/heads/$4" && git reset --quiet "$1" -- && { git update-index -q --refresh >/dev/null; git read-tree -m -u "$1" "$2"; } || exit 9
          if [ "$5" = merged ]; then git update-ref HEAD "$2" || exit 9
          else printf '%s\n' "$3" > "$(git rev-parse --absolute-git-dir)/MERGE_HEAD" || exit 9; fi
          exit 0
        fi
        if [ "$what" = diff ]; then
          if [ -n "$path" ]; then exec git diff --cached --no-color --no-ext-diff -M "$base" -- "$path"; fi
          exec git diff --cached --no-color --no-ext-diff -M "$base"
        fi
        printf '%s\n' "$(git --git-dir="$tree/.git" rev-parse --quiet --verify HEAD 2>/dev/null)"
        printf '%s\n' "$(git --git-dir="$tree/.git" symbolic-ref --quiet --short HEAD 2>/dev/null)"
        printf '\036'
        git diff --cached -z --no-ext-diff -M --name-status "$base" || exit 5
        printf '\036'
        git diff --cached -z --no-ext-diff -M --numstat "$base" || exit 5
        """;

    /// <summary>Nothing differs from the parent: no commit made.</summary>
    public const int NothingToCommit = 7;

    /// <summary>Update: the tree holds work not committed on its branch, which updating would mix with the base's.</summary>
    public const int NotCommitted = 8;

    /// <summary>Update: the tree could not be moved (a file changed meanwhile): it is as it was.</summary>
    public const int NotMoved = 9;

    public static string[] Argv(string tree, string scratch, string mirrorObjects, string baseCommit, string what, string argument) =>
        ["sh", "-c", Script, "covibe-changes", tree, scratch, mirrorObjects, baseCommit, what, argument];

    /// <summary>A summary's output: what the tree has checked out, and each file changed (at most <paramref name="maxFiles"/>).</summary>
    public static ChangeSummary Parse(string output, int maxFiles)
    {
        var parts = output.Split(Separator);
        if (parts.Length != 3)
        {
            throw new FormatException("The changes script printed something else than a summary.");
        }
        var lines = parts[0].Split('\n');
        var head = lines.Length > 0 && lines[0].Length is 40 or 64 ? lines[0] : null;
        var branch = lines.Length > 1 && lines[1].Length > 0 ? lines[1] : null;

        var files = new List<ChangedFileDto>();
        var statuses = parts[1].Split('\0');
        for (var i = 0; i + 1 < statuses.Length && statuses[i].Length > 0;)
        {
            var code = statuses[i][0];
            if (code is 'R' or 'C' && i + 2 < statuses.Length)
            {
                files.Add(new ChangedFileDto(statuses[i + 2], code.ToString(), null, null, statuses[i + 1]));
                i += 3;
            }
            else
            {
                files.Add(new ChangedFileDto(statuses[i + 1], code.ToString(), null, null));
                i += 2;
            }
        }

        // numstat -z: "added<TAB>removed<TAB>path\0", or for a rename "added<TAB>removed<TAB>\0old\0new\0"; "-" for binary.
        var counts = new Dictionary<string, (int? Added, int? Removed)>(StringComparer.Ordinal);
        var numbers = parts[2].Split('\0');
        for (var i = 0; i < numbers.Length && numbers[i].Length > 0;)
        {
            var fields = numbers[i].Split('\t', 3);
            if (fields.Length != 3)
            {
                break;
            }
            var (added, removed) = (Count(fields[0]), Count(fields[1]));
            if (fields[2].Length == 0 && i + 2 < numbers.Length)
            {
                counts[numbers[i + 2]] = (added, removed);
                i += 3;
            }
            else
            {
                counts[fields[2]] = (added, removed);
                i += 1;
            }
        }
        var listed = files.Select(f => counts.TryGetValue(f.Path, out var c) ? f with { Added = c.Added, Removed = c.Removed } : f)
            .OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        return new ChangeSummary(head, branch, [.. listed.Take(maxFiles)], listed.Count > maxFiles, listed.Sum(f => f.Added ?? 0), listed.Sum(f => f.Removed ?? 0));
    }

    private static int? Count(string value) => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
}
