using System.Diagnostics;
using Covibe.Execution;
using Docker.DotNet;
using Covibe.Execution.Containers;

/// <summary>
/// A real Podman serving the Docker Engine API for a benchmark: on a socket in the benchmark's work directory, with
/// its own storage and the configuration these machines need, and the default image built into it (<c>covibe-agent:bench</c>)
/// by the same code as <c>covibe image build</c>. Disposing removes every container, stops it and deletes the directory.
/// </summary>
sealed class BenchPodman : IAsyncDisposable
{
    public const string Image = "covibe-agent:bench";
    private readonly string _work;
    private readonly Process _service;

    private BenchPodman(string work, Process service)
    {
        _work = work;
        _service = service;
    }

    public string Host => $"unix://{_work}/podman.sock";

    public static async Task<BenchPodman> StartAsync(string work)
    {
        var config = Path.Combine(work, "containers.conf");
        await File.WriteAllTextAsync(config, "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n[engine]\nruntime = \"runc\"\n");
        var info = new ProcessStartInfo("podman", ["--root", $"{work}/root", "--runroot", $"{work}/run", "--tmpdir", $"{work}/tmp", "system", "service", "--time=0", $"unix://{work}/podman.sock"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        info.Environment["CONTAINERS_CONF"] = config;
        // Podman keeps each imported image's tarball in TMPDIR (default /var/tmp) and never deletes it.
        Directory.CreateDirectory($"{work}/tmp");
        info.Environment["TMPDIR"] = $"{work}/tmp";
        var podman = new BenchPodman(work, Process.Start(info)!);
        for (var i = 0; i < 300 && !File.Exists($"{work}/podman.sock"); i++)
        {
            await Task.Delay(100);
        }
        using var docker = podman.Client(TimeSpan.FromMinutes(5));
        var watch = Stopwatch.StartNew();
        await HostImage.BuildAsync(docker, Image, (10001, 10001), new Progress<string>(_ => { }), CancellationToken.None);
        Console.WriteLine($"image built from this machine's packages in {watch.Elapsed.TotalSeconds:0.0} s");
        return podman;
    }

    public DockerClient Client(TimeSpan? timeout = null) => new DockerClientBuilder().WithEndpoint(new Uri(Host)).WithTimeout(timeout ?? TimeSpan.FromSeconds(100)).Build();

    public async ValueTask DisposeAsync()
    {
        using (var docker = Client())
        {
            foreach (var container in await docker.Containers.ListContainersAsync(new Docker.DotNet.Models.ContainersListParameters { All = true }))
            {
                await docker.Containers.RemoveContainerAsync(container.ID, new Docker.DotNet.Models.ContainerRemoveParameters { Force = true });
            }
        }
        _service.Kill(entireProcessTree: true);
        await _service.WaitForExitAsync();
        _service.Dispose();
        using var cleanup = Process.Start("sh", ["-c", $"umount -R {_work}/root/overlay 2>/dev/null; rm -rf {_work}"])!;
        await cleanup.WaitForExitAsync();
    }
}

/// <summary>A git repository on this disk: the benchmarks' "GitHub".</summary>
static class BenchGit
{
    public static string Commit(string repo, Dictionary<string, string> files)
    {
        foreach (var (name, content) in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(repo, name))!);
            File.WriteAllText(Path.Combine(repo, name), content);
        }
        Run(repo, "add", "-A");
        Run(repo, "-c", "user.email=bench@example.com", "-c", "user.name=Bench", "commit", "-q", "--allow-empty", "-m", "version");
        return Run(repo, "rev-parse", "HEAD").Trim();
    }

    public static string Run(string repo, params string[] args)
    {
        var info = new ProcessStartInfo("git") { WorkingDirectory = repo, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var git = Process.Start(info)!;
        var output = git.StandardOutput.ReadToEnd();
        git.WaitForExit();
        return git.ExitCode == 0 ? output : throw new InvalidOperationException($"git {string.Join(' ', args)}: {git.StandardError.ReadToEnd()}");
    }
}
