namespace Covibe.Server.Features.Boxes;

/// <summary>
/// The clone every box starts with, as one POSIX sh script run where the box is (inside its container, or on its VM over
/// SSH), as the box's user: the branch from <c>$1</c> (the server's read-only mirror, or the repository's address) into
/// <c>$4</c> (absolute, or relative to the user's home, then made afresh), checked out at <c>$3</c> if given, with
/// <c>origin</c> pointing at <c>$5</c>; it prints the commit it checked out. <c>$6</c>, if given, is printed to stderr
/// when the repository has a dev container configuration.
/// </summary>
public static class BoxClone
{
    /// <summary>The exit code when there is no git where the box is.</summary>
    public const int NoGit = 127;

    private const string Script = """
        set -e
        command -v git >/dev/null || { echo "There is no git where the box is: install it to make boxes there." >&2; exit 127; }
        case "$4" in /*) dest=$4 ;; *) dest=$HOME/$4; rm -rf "$dest"; mkdir -p "$(dirname "$dest")" ;; esac
        # The source may belong to another user (the server's mirror): trusted for this one clone, by its upload-pack too
        # (which reads global configuration only).
        trust=$(mktemp)
        trap 'rm -f "$trust"' EXIT
        printf '[safe]\n\tdirectory = %s\n\tdirectory = %s/.git\n' "$1" "$1" > "$trust"
        GIT_CONFIG_GLOBAL="$trust" git clone --progress --branch "$2" -- "$1" "$dest"
        cd "$dest"
        [ -z "$3" ] || git -c advice.detachedHead=false checkout -q -B "$2" "$3"
        git remote set-url origin "$5"
        if [ -n "$6" ] && { [ -f .devcontainer/devcontainer.json ] || [ -f .devcontainer.json ]; }; then echo "$6" >&2; fi
        git rev-parse HEAD
        """;

    public static string[] Argv(string source, string branch, string? commit, string destination, string origin, string? devcontainerNote = null) =>
        ["sh", "-c", Script, "covibe-clone", source, branch, commit ?? "", destination, origin, devcontainerNote ?? ""];

    /// <summary>Why the clone failed, for the team.</summary>
    public static string Failure(long exitCode, string where) => exitCode == NoGit
        ? $"There is no git {where}: install it to make boxes there."
        : $"Cloning the repository {where} failed (exit {exitCode}); see the box's log.";
}
