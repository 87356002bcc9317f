using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Boxes;

/// <summary>What <c>devcontainer up</c> answered: the container, the user to run as and where the workspace is.</summary>
public sealed record DevcontainerUp(string ContainerId, string RemoteUser, string Workspace);

/// <summary>
/// The real Dev Containers CLI (<c>@devcontainers/cli</c>), driving the engine at <c>DOCKER_HOST</c> through a
/// docker-compatible command (the docker CLI, or Podman's remote client). It runs on this machine on a copy of the
/// repository's files with a sanitized configuration (<see cref="DevcontainerConfig"/>); what it prints goes to the
/// box's log. Lifecycle commands run inside the box, after the clone (<see cref="RunUserCommandsAsync"/>).
/// </summary>
public sealed class DevcontainerCli(IOptions<BoxesOptions> options, IOptions<ServerOptions> server, BoxContainers containers)
{
    /// <summary>Null if the CLI can run here, else what to install.</summary>
    public string? Problem()
    {
        if (Cli() is null)
        {
            return "The Dev Containers CLI is not installed on the server (npm install -g @devcontainers/cli, or set Covibe:Boxes:DevcontainerCli).";
        }
        return DockerPath() is null ? "Neither the docker CLI nor podman is installed on the server; the Dev Containers CLI needs one of them." : null;
    }

    public async Task<DevcontainerUp> UpAsync(string workspaceFolder, string boxId, BoxLog log, CancellationToken cancellationToken)
    {
        var output = await RunAsync(["up", "--workspace-folder", workspaceFolder, "--id-label", $"{BoxContainers.BoxLabel}={boxId}",
            "--skip-post-create", "--buildkit", "never", "--remove-existing-container"], log, cancellationToken);
        var result = Outcome(output);
        if (result.GetProperty("outcome").GetString() != "success")
        {
            var message = result.TryGetProperty("description", out var d) ? d.GetString() : result.TryGetProperty("message", out var m) ? m.GetString() : null;
            throw new BoxProvisionException($"devcontainer up failed: {message ?? "see the box's log"}.");
        }
        return new DevcontainerUp(
            result.GetProperty("containerId").GetString()!,
            result.TryGetProperty("remoteUser", out var user) && user.GetString() is { Length: > 0 } u ? u : "root",
            result.TryGetProperty("remoteWorkspaceFolder", out var folder) && folder.GetString() is { Length: > 0 } f ? f : Execution.Isolated.Workspace);
    }

    /// <summary>The configuration's lifecycle commands (onCreate, updateContent, postCreate, postStart), inside the box, once the repository is there.</summary>
    public async Task RunUserCommandsAsync(string workspaceFolder, string boxId, BoxLog log, CancellationToken cancellationToken)
    {
        var output = await RunAsync(["run-user-commands", "--workspace-folder", workspaceFolder, "--id-label", $"{BoxContainers.BoxLabel}={boxId}"], log, cancellationToken);
        if (Outcome(output).GetProperty("outcome").GetString() != "success")
        {
            throw new BoxProvisionException("The dev container's lifecycle commands (postCreateCommand, ...) failed; see the box's log.");
        }
    }

    private async Task<string> RunAsync(IReadOnlyList<string> args, BoxLog log, CancellationToken cancellationToken)
    {
        var cli = Cli() ?? throw new BoxProvisionException(Problem()!);
        var docker = DockerPath() ?? throw new BoxProvisionException(Problem()!);
        var home = Path.Combine(server.Value.DataDirectory, "boxes", ".devcontainer-home");
        Directory.CreateDirectory(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var info = new ProcessStartInfo(cli) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.ArgumentList.Add("--docker-path");
        info.ArgumentList.Add(docker);
        // Only what the CLI needs: none of the server's own variables (keys, tokens) reach it or the box.
        info.Environment.Clear();
        info.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        info.Environment["HOME"] = home;
        info.Environment["DOCKER_HOST"] = containers.EngineAddress;
        info.Environment["CONTAINER_HOST"] = containers.EngineAddress;
        info.Environment["DOCKER_BUILDKIT"] = "0";
        info.Environment["DOCKER_CONFIG"] = Path.Combine(home, ".docker");
        using var process = Process.Start(info) ?? throw new BoxProvisionException("The Dev Containers CLI could not be started.");
        var stdout = new StringBuilder();
        var reading = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
            {
                stdout.AppendLine(line);
            }
        }, cancellationToken);
        var logging = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync(cancellationToken) is { } line)
            {
                log.Line(line);
            }
        }, cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
            await Task.WhenAll(reading, logging);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return stdout.ToString();
    }

    private static JsonElement Outcome(string output)
    {
        // The last line of JSON on stdout is the result.
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Reverse())
        {
            if (line.StartsWith('{'))
            {
                try
                {
                    return JsonDocument.Parse(line).RootElement.Clone();
                }
                catch (JsonException)
                {
                    // Not the result line.
                }
            }
        }
        throw new BoxProvisionException("The Dev Containers CLI gave no result; see the box's log.");
    }

    private string? Cli() => options.Value.DevcontainerCli is { Length: > 0 } configured ? configured : OnPath("devcontainer");

    /// <summary>The docker CLI if installed; else a small script that runs Podman's remote client against DOCKER_HOST.</summary>
    private string? DockerPath()
    {
        if (options.Value.DockerCli is { Length: > 0 } configured)
        {
            return configured;
        }
        if (OnPath("docker") is { } docker)
        {
            return docker;
        }
        if (OnPath("podman") is null)
        {
            return null;
        }
        var bin = Path.Combine(server.Value.DataDirectory, "boxes", ".bin");
        Directory.CreateDirectory(bin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var script = Path.Combine(bin, "docker");
        if (!File.Exists(script))
        {
            File.WriteAllText(script, "#!/bin/sh\nexec podman --remote --url \"$CONTAINER_HOST\" \"$@\"\n");
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return script;
    }

    private static string? OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists);
}
