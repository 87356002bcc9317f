using System.CommandLine;
using Covibe.Execution;
using Covibe.Server.Features.Containers;
using Docker.DotNet;
using Covibe.Execution.Containers;

namespace Covibe.Cli;

/// <summary><c>covibe image build</c>: the default agent image, made from this machine's own packages (no registry needed).</summary>
internal static class ImageCommand
{
    public static Command Create()
    {
        var image = new Option<string?>("--image") { Description = $"The image to build (default: $AGENT_IMAGE, else {ContainersOptions.DefaultImage})" };
        var host = new Option<string?>("--docker-host") { Description = "The container engine (default: $DOCKER_HOST, else /var/run/docker.sock, else Podman's socket)" };
        var uid = new Option<uint>("--uid") { Description = "The unprivileged user agents run as in the image", DefaultValueFactory = _ => 10001 };
        var build = new Command("build",
            "Build the agent image that USE_DOCKER_AGENTS runs agents and terminals in: a shell, git, Node.js, the .NET runtime and this covibe, " +
            "from this machine's own installed packages. For Claude Code itself use deploy/agent/Containerfile.") { image, host, uid };
        build.SetHandler(async (parse, ct) =>
        {
            var options = new ContainersOptions { Host = parse.GetValue(host) ?? Environment.GetEnvironmentVariable("DOCKER_HOST") };
            var name = parse.GetValue(image)
                ?? (Environment.GetEnvironmentVariable("AGENT_IMAGE") is { Length: > 0 } configured ? configured : ContainersOptions.DefaultImage);
            using var docker = new DockerClientBuilder().WithEndpoint(new Uri(options.EngineAddress)).WithTimeout(TimeSpan.FromMinutes(10)).Build();
            try
            {
                await docker.System.PingAsync(ct);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException)
            {
                throw new CliException($"The container engine at {options.EngineAddress} does not answer ({e.GetBaseException().Message}). Start it (e.g. `podman system service --time=0 unix:///run/podman/podman.sock`) or set DOCKER_HOST.");
            }
            Console.WriteLine($"Building {name} for {options.EngineAddress}...");
            await HostImage.BuildAsync(docker, name, (parse.GetValue(uid), parse.GetValue(uid)), new Progress<string>(Console.WriteLine), ct);
        });
        return new Command("image", "Container images for agents and terminals") { build };
    }
}
