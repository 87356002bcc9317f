using System.Diagnostics;

namespace Covibe.Execution;

/// <summary>
/// A work tree's starting point for another machine (an SSH VM): a <c>git bundle</c> of the source's reference, its whole
/// history, which the wrapper there clones instead of borrowing the source (<see cref="WorkTree"/>). Made with git's own
/// defaults only (no configuration of this machine, no hooks), at most <see cref="MaxBytes"/>.
/// </summary>
public static class TreeBundles
{
    public const long MaxBytes = 1L << 30;

    private const string Receiver = """
        f="$HOME/$1"; d=$(dirname "$f")
        mkdir -p "$d" && chmod 700 "$d" && cat > "$f" && printf '%s\n' "$f"
        """;

    /// <summary>
    /// The argv that copies a bundle, given as its stdin, to <paramref name="path"/> on a VM (relative to its user's home,
    /// in a directory only that user may enter); it prints the bundle's absolute path there.
    /// </summary>
    public static string[] CopyArgv(string path) => ["sh", "-c", Receiver, "covibe-bundle", path];

    /// <summary>The bundle of <paramref name="tree"/>'s reference, without what <paramref name="exclude"/> (commits the other side has) reaches.</summary>
    public static async Task<byte[]> CreateAsync(WorkTree tree, CancellationToken cancellationToken, IReadOnlyList<string>? exclude = null)
    {
        var info = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment.Clear();
        info.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        info.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        info.Environment["GIT_CONFIG_GLOBAL"] = "/dev/null";
        info.Environment["GIT_DIR"] = tree.Source;
        foreach (var arg in (string[])["bundle", "create", "--quiet", "-", tree.Reference ?? throw new ArgumentException("A tree for another machine names its reference.", nameof(tree)),
            .. (exclude ?? []).Select(commit => "^" + commit)])
        {
            info.ArgumentList.Add(arg);
        }
        using var git = Process.Start(info) ?? throw new IOException("git could not be started.");
        var errors = git.StandardError.ReadToEndAsync(cancellationToken);
        using var bundle = new MemoryStream();
        var buffer = new byte[81920];
        int read;
        while ((read = await git.StandardOutput.BaseStream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (bundle.Length + read > MaxBytes)
            {
                git.Kill(entireProcessTree: true);
                throw new IOException($"The repository is larger than {MaxBytes >> 20} MB: too large to copy to a VM for an agent's work tree.");
            }
            bundle.Write(buffer, 0, read);
        }
        await git.WaitForExitAsync(cancellationToken);
        return git.ExitCode == 0 ? bundle.ToArray() : throw new IOException($"The work tree's bundle could not be made: {(await errors).Trim()}");
    }
}
