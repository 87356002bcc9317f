using System.Diagnostics;
using Covibe.Execution;
using Docker.DotNet;
using Covibe.Execution.Containers;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A real container engine for the test run: Podman's Docker API service (<c>podman system
/// service</c>) on a socket in a temp directory, with its own storage and configuration (runc, the
/// ulimits these machines need), and the default agent image built into it by the same code as
/// <c>covibe image build</c>. Stopped and deleted at the end, containers and all.
/// </summary>
public sealed class PodmanService : IAsyncLifetime
{
    public const string Image = "covibe-agent:test";
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "covibe-podman-" + Guid.NewGuid().ToString("N")[..8]);
    private Process? _service;

    public string Socket => Path.Combine(_directory, "podman.sock");

    public string DockerHost => $"unix://{Socket}";

    public DockerClient Client { get; private set; } = null!;

    /// <summary>Settings for a server whose agents run in this engine's containers.</summary>
    public Dictionary<string, string> Settings(Dictionary<string, string>? settings = null)
    {
        var all = settings ?? AgentHelpers.Settings();
        all["Covibe:Containers:Agents"] = "true";
        all["Covibe:Containers:Host"] = DockerHost;
        all["Covibe:Containers:Image"] = Image;
        return all;
    }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        var config = Path.Combine(_directory, "containers.conf");
        // These machines start containers only with runc and explicit ulimits (see ENVIRONMENT.md).
        // Its networks' configurations are its own too (Podman's default, /etc/cni/net.d, is the machine's).
        await File.WriteAllTextAsync(config, "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n[engine]\nruntime = \"runc\"\n" +
            $"[network]\nnetwork_config_dir = \"{Path.Combine(_directory, "cni")}\"\n");
        await StartServiceAsync();
        Client = new DockerClientBuilder().WithEndpoint(new Uri(DockerHost)).WithTimeout(TimeSpan.FromMinutes(5)).Build();
        await Client.System.PingAsync();
        await HostImage.BuildAsync(Client, Image, (10001, 10001), new Progress<string>(_ => { }), CancellationToken.None);
    }

    /// <summary>Starts the API service (its containers, run by conmon, live on while it is stopped).</summary>
    public async Task StartServiceAsync()
    {
        var info = new ProcessStartInfo("podman",
            ["--root", Path.Combine(_directory, "root"), "--runroot", Path.Combine(_directory, "run"), "--tmpdir", Path.Combine(_directory, "tmp"),
                "system", "service", "--time=0", DockerHost])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        info.Environment["CONTAINERS_CONF"] = Path.Combine(_directory, "containers.conf");
        // Podman keeps each imported image's tarball in TMPDIR (/var/tmp by default) and never deletes it: 461 MB a run
        // filled a machine's disk. Here it goes with the rest of the fixture.
        Directory.CreateDirectory(Path.Combine(_directory, "tmp"));
        info.Environment["TMPDIR"] = Path.Combine(_directory, "tmp");
        _service = Process.Start(info) ?? throw new InvalidOperationException("podman could not be started; install it (./test.sh does).");
        await Eventually.UntilAsync(() => Task.FromResult(File.Exists(Socket)), "podman's API socket appears", TimeSpan.FromSeconds(30));
    }

    /// <summary>Stops the API service as a crash would (its socket stays, refusing connections); the engine is gone for the server.</summary>
    public async Task StopServiceAsync()
    {
        _service!.Kill();
        await _service.WaitForExitAsync();
        _service.Dispose();
        _service = null;
    }

    /// <summary>Starts the API service again after <see cref="StopServiceAsync"/>, answering again.</summary>
    public async Task RestartServiceAsync()
    {
        File.Delete(Socket);
        await StartServiceAsync();
        await Eventually.UntilAsync(async () =>
        {
            try
            {
                await Client.System.PingAsync();
                return true;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException)
            {
                return false;
            }
        }, "podman answers again", TimeSpan.FromSeconds(30));
        await RepairAsync();
    }

    /// <summary>
    /// A service killed while it removed a container leaves it in Podman's database but not in its storage, and every list
    /// fails on it from then on ("container not known"): such containers are removed with the CLI, as an operator would.
    /// </summary>
    private async Task RepairAsync()
    {
        for (var i = 0; i < 10; i++)
        {
            try
            {
                await Client.Containers.ListContainersAsync(new Docker.DotNet.Models.ContainersListParameters { All = true });
                return;
            }
            catch (DockerApiException e) when (Covibe.Execution.Containers.ManagedContainers.RemovedWhileListed(e)
                && System.Text.RegularExpressions.Regex.Match(e.ResponseBody ?? "", "store \\\\\"([0-9a-f]{64})") is { Success: true } broken)
            {
                var info = new ProcessStartInfo("podman", ["--root", Path.Combine(_directory, "root"), "--runroot", Path.Combine(_directory, "run"),
                    "rm", "--force", broken.Groups[1].Value]) { RedirectStandardError = true, RedirectStandardOutput = true };
                info.Environment["CONTAINERS_CONF"] = Path.Combine(_directory, "containers.conf");
                using var rm = Process.Start(info)!;
                await rm.WaitForExitAsync();
            }
        }
    }

    /// <summary>Every container of this Podman, listed again when a container removed meanwhile fails the list (Podman 4.3).</summary>
    public Task<IList<Docker.DotNet.Models.ContainerListResponse>> ListAsync() =>
        Covibe.Execution.Containers.ManagedContainers.ListAsync(Client, new Docker.DotNet.Models.ContainersListParameters { All = true }, CancellationToken.None);

    /// <summary>Runs <paramref name="argv"/> in a running container as <paramref name="user"/>; answers what it printed (stdout and stderr).</summary>
    public async Task<string> ExecAsync(string container, string user, params string[] argv)
    {
        var exec = await Client.Exec.CreateContainerExecAsync(container, new Docker.DotNet.Models.ContainerExecCreateParameters
        {
            Cmd = argv,
            User = user,
            AttachStdout = true,
            AttachStderr = true,
        });
        using var stream = await Client.Exec.StartContainerExecAsync(exec.ID, new Docker.DotNet.Models.ContainerExecStartParameters());
        var (stdout, stderr) = await stream.ReadOutputToEndAsync(CancellationToken.None);
        return stdout + stderr;
    }

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var container in await Client.Containers.ListContainersAsync(new Docker.DotNet.Models.ContainersListParameters { All = true }))
            {
                await Client.Containers.RemoveContainerAsync(container.ID, new Docker.DotNet.Models.ContainerRemoveParameters { Force = true });
            }
            // Teams' networks: their bridges are this machine's.
            foreach (var network in await Client.Networks.ListNetworksAsync())
            {
                if (network.Name.StartsWith("covibe-team-", StringComparison.Ordinal))
                {
                    await Client.Networks.DeleteNetworkAsync(network.ID);
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException)
        {
            // The service is gone already.
        }
        Client?.Dispose();
        if (_service is { HasExited: false })
        {
            _service.Kill(entireProcessTree: true);
            await _service.WaitForExitAsync();
        }
        _service?.Dispose();
        // Overlay mounts of the storage may linger a moment after the service.
        using var cleanup = Process.Start("sh", ["-c", $"umount -R {_directory}/root/overlay 2>/dev/null; rm -rf {_directory}"]);
        await cleanup.WaitForExitAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class PodmanGroup : ICollectionFixture<PodmanService>
{
    public const string Name = "Podman";
}
