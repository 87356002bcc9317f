using System.Diagnostics;
using System.Formats.Tar;
using System.Text;
using System.Text.RegularExpressions;

namespace Covibe.Server.Features.Git;

/// <summary>A git operation that failed; <see cref="Exception.Message"/> is fit to show the team (never a credential: URLs with one are refused).</summary>
public sealed class GitMirrorException(string message) : Exception(message);

/// <summary>
/// The server's side of a team's repositories (the shared preview's, its boxes'): bare mirrors, fetched (never checked
/// out, so nothing in a repository runs here), a commit's tree exported with <c>git archive</c> or one file read. Only
/// https and http remotes, plus repositories on this disk when the operator allows them; no prompts, no hooks, no
/// system or user git configuration, no credential helpers.
/// </summary>
public sealed partial class GitMirror(string home)
{
    /// <summary>The commit <paramref name="branch"/> points to in the remote now, or null if it has no such branch.</summary>
    public async Task<string?> HeadAsync(GitRemote remote, string branch, CancellationToken cancellationToken)
    {
        var output = await RunAsync(["ls-remote", "--heads", "--", remote.Url, "refs/heads/" + branch], null, remote, TimeSpan.FromSeconds(60), cancellationToken);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split('\t');
            if (parts.Length == 2 && parts[1] == "refs/heads/" + branch && Sha().IsMatch(parts[0]))
            {
                return parts[0];
            }
        }
        return null;
    }

    /// <summary>The branch the remote's HEAD names (its default branch), or null when it names none (an empty repository).</summary>
    public async Task<string?> DefaultBranchAsync(GitRemote remote, CancellationToken cancellationToken)
    {
        var output = await RunAsync(["ls-remote", "--symref", "--", remote.Url, "HEAD"], null, remote, TimeSpan.FromSeconds(60), cancellationToken);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("ref: refs/heads/", StringComparison.Ordinal) && line.EndsWith("\tHEAD", StringComparison.Ordinal))
            {
                var branch = line["ref: refs/heads/".Length..^"\tHEAD".Length];
                return GitNames.IsBranchName(branch) ? branch : null;
            }
        }
        return null;
    }

    /// <summary>Fetches <paramref name="branch"/> into the team's mirror (made on first use); answers the commit it points to.</summary>
    public async Task<string> FetchAsync(string mirror, GitRemote remote, string branch, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(Path.Combine(mirror, "objects")))
        {
            Directory.CreateDirectory(mirror, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            await RunAsync(["init", "--quiet", "--bare", mirror], null, null, TimeSpan.FromSeconds(30), cancellationToken);
        }
        await RunAsync(["fetch", "--quiet", "--no-tags", "--force", "--", remote.Url, $"+refs/heads/{branch}:refs/heads/{branch}"], mirror, remote, timeout, cancellationToken);
        var head = (await RunAsync(["rev-parse", "--verify", "--quiet", $"refs/heads/{branch}^{{commit}}"], mirror, null, TimeSpan.FromSeconds(30), cancellationToken)).Trim();
        return Sha().IsMatch(head) ? head : throw new GitMirrorException($"The branch '{branch}' was not found in the repository.");
    }

    /// <summary>Points <paramref name="reference"/> of the mirror at <paramref name="commit"/> (keeping what it reaches from being pruned).</summary>
    public async Task UpdateRefAsync(string mirror, string reference, string commit, CancellationToken cancellationToken)
    {
        if (!Sha().IsMatch(commit) || !reference.StartsWith("refs/", StringComparison.Ordinal))
        {
            throw new GitMirrorException($"'{reference}' -> '{commit}' is not a reference to a commit.");
        }
        await RunAsync(["update-ref", reference, commit], mirror, null, TimeSpan.FromSeconds(30), cancellationToken);
    }

    /// <summary>Removes <paramref name="reference"/> from the mirror, if it is there.</summary>
    public async Task DeleteRefAsync(string mirror, string reference, CancellationToken cancellationToken) =>
        await RunAsync(["update-ref", "-d", reference], mirror, null, TimeSpan.FromSeconds(30), cancellationToken);

    /// <summary>Whether the mirror holds <paramref name="commit"/>.</summary>
    public async Task<bool> HasCommitAsync(string mirror, string commit, CancellationToken cancellationToken)
    {
        try
        {
            await RunAsync(["cat-file", "-e", commit + "^{commit}"], mirror, null, TimeSpan.FromSeconds(30), cancellationToken);
            return true;
        }
        catch (GitMirrorException)
        {
            return false;
        }
    }

    /// <summary>The text of one file of <paramref name="commit"/> (at most a megabyte), or null when the commit has no such file.</summary>
    public async Task<string?> ReadFileAsync(string mirror, string commit, string path, CancellationToken cancellationToken)
    {
        if (!Sha().IsMatch(commit))
        {
            throw new GitMirrorException($"'{commit}' is not a commit id.");
        }
        try
        {
            var size = (await RunAsync(["cat-file", "-s", $"{commit}:{path}"], mirror, null, TimeSpan.FromSeconds(30), cancellationToken)).Trim();
            if (!long.TryParse(size, System.Globalization.CultureInfo.InvariantCulture, out var bytes) || bytes > 1 << 20)
            {
                throw new GitMirrorException($"{path} is larger than a megabyte.");
            }
        }
        catch (GitMirrorException e) when (!e.Message.Contains("megabyte", StringComparison.Ordinal))
        {
            return null;
        }
        return await RunAsync(["cat-file", "blob", $"{commit}:{path}"], mirror, null, TimeSpan.FromSeconds(30), cancellationToken);
    }

    /// <summary>Writes <paramref name="commit"/>'s files into the empty directory <paramref name="target"/> (links that point outside it are refused).</summary>
    public async Task ExportAsync(string mirror, string commit, string target, CancellationToken cancellationToken)
    {
        if (!Sha().IsMatch(commit))
        {
            throw new GitMirrorException($"'{commit}' is not a commit id.");
        }
        Directory.CreateDirectory(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        using var git = Start(["archive", "--format=tar", commit], mirror, remote: null, redirectOutput: true);
        var errors = git.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await TarFile.ExtractToDirectoryAsync(git.StandardOutput.BaseStream, target, overwriteFiles: false, cancellationToken);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            Kill(git);
            throw new GitMirrorException($"The commit's files could not be written: {e.Message}");
        }
        catch (OperationCanceledException)
        {
            Kill(git);
            throw;
        }
        await git.WaitForExitAsync(cancellationToken);
        if (git.ExitCode != 0)
        {
            throw new GitMirrorException(Explain(await errors, "git archive"));
        }
    }

    private async Task<string> RunAsync(IReadOnlyList<string> args, string? gitDir, GitRemote? remote, TimeSpan timeout, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var (code, output, errors) = await RunCodeAsync(args, gitDir, remote, timeout, cancellationToken, environment);
        return code == 0 ? output : throw new GitMirrorException(Explain(errors, "git " + args[0]));
    }

    /// <summary>git's exit code, output and errors, for commands whose exit code answers a question (1: no, a conflict).</summary>
    private async Task<(int Code, string Output, string Errors)> RunCodeAsync(IReadOnlyList<string> args, string? gitDir, GitRemote? remote, TimeSpan timeout,
        CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? environment = null)
    {
        using var git = Start(args, gitDir, remote, redirectOutput: true, environment);
        var output = git.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = git.StandardError.ReadToEndAsync(cancellationToken);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await git.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(git);
            cancellationToken.ThrowIfCancellationRequested();
            throw new GitMirrorException($"git {args[0]} took longer than {timeout.TotalSeconds:0} s and was stopped.");
        }
        return (git.ExitCode, await output, await errors);
    }

    /// <summary>
    /// git with nothing of this machine's configuration, no prompt, no hook, and only the transports <paramref name="remote"/>
    /// needs: https and http always, ssh when it logs in over SSH, this disk when the operator allows it. Its credential goes
    /// into this process's environment alone.
    /// </summary>
    private Process Start(IReadOnlyList<string> args, string? gitDir, GitRemote? remote, bool redirectOutput, IReadOnlyDictionary<string, string>? environment = null)
    {
        Directory.CreateDirectory(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var info = new ProcessStartInfo("git")
        {
            RedirectStandardOutput = redirectOutput,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.Environment.Clear();
        info.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        info.Environment["HOME"] = home;
        info.Environment["LANG"] = "C.UTF-8";
        info.Environment["GIT_TERMINAL_PROMPT"] = "0";
        info.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        info.Environment["GIT_CONFIG_GLOBAL"] = "/dev/null";
        info.Environment["GIT_ASKPASS"] = "/bin/false";
        info.Environment["SSH_ASKPASS"] = "/bin/false";
        if (gitDir is not null)
        {
            info.Environment["GIT_DIR"] = gitDir;
        }
        foreach (var (name, value) in (remote?.Access?.Environment ?? new Dictionary<string, string>()).Concat(environment ?? new Dictionary<string, string>()))
        {
            info.Environment[name] = value;
        }
        foreach (var setting in (string[])["protocol.allow=never", "protocol.https.allow=always", "protocol.http.allow=always",
            remote is { AllowLocal: true } ? "protocol.file.allow=always" : "protocol.file.allow=never",
            remote?.Access is { OverSsh: true } ? "protocol.ssh.allow=always" : "protocol.ssh.allow=never", "credential.helper=", "core.hooksPath=/dev/null", "advice.pushUpdateRejected=false",
            "transfer.fsckObjects=true", "http.lowSpeedLimit=1000", "http.lowSpeedTime=60"])
        {
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add(setting);
        }
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        var process = Process.Start(info) ?? throw new GitMirrorException("git could not be started.");
        process.StandardInput.Close();
        return process;
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
    }

    private static string Explain(string stderr, string what)
    {
        // git's own advice after a refused fetch says nothing the line before it does not ("Permission denied (publickey)").
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(line => !line.StartsWith("Please make sure you have the correct access rights", StringComparison.Ordinal) && line != "and the repository exists.")
            .TakeLast(3).ToArray();
        var text = lines.Length == 0 ? $"{what} failed." : string.Join(" ", lines);
        return text.Length > 500 ? text[..500] + "..." : text;
    }

    [GeneratedRegex("^[0-9a-f]{40}([0-9a-f]{24})?$")]
    private static partial Regex Sha();
}
