using System.Diagnostics;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>A real git repository in a temp directory: the team's "GitHub" for preview tests.</summary>
public sealed class GitRepo : IDisposable
{
    private GitRepo(string path) => Path = path;

    public string Path { get; }

    public static GitRepo Create(string branch = "main")
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "covibe-repo-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(path);
        var repo = new GitRepo(path);
        repo.Git("init", "-q", "-b", branch);
        return repo;
    }

    /// <summary>Writes the files (path -> content; null deletes) and commits them; answers the commit id.</summary>
    public string Commit(string message, Dictionary<string, string?> files)
    {
        foreach (var (name, content) in files)
        {
            var file = System.IO.Path.Combine(Path, name);
            if (content is null)
            {
                File.Delete(file);
                continue;
            }
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
            File.WriteAllText(file, content);
        }
        Git("add", "-A");
        Git("-c", "user.email=agent@example.com", "-c", "user.name=Agent", "commit", "-q", "--allow-empty", "-m", message);
        return Head();
    }

    public string Head(string branch = "HEAD") => Git("rev-parse", branch).Trim();

    public string Git(params string[] args)
    {
        var info = new ProcessStartInfo("git") { WorkingDirectory = Path, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var git = Process.Start(info)!;
        var output = git.StandardOutput.ReadToEnd();
        var errors = git.StandardError.ReadToEnd();
        git.WaitForExit();
        git.ExitCode.ShouldBe(0, $"git {string.Join(' ', args)}: {errors}");
        return output;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
