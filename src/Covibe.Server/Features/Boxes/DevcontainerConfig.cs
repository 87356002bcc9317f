using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Covibe.Server.Features.Boxes;

/// <summary>Why a repository's dev container configuration cannot be used; the message is for the team.</summary>
public sealed class DevcontainerConfigException(string message) : Exception(message);

/// <summary>What the box's container must be, whatever the repository asks: set by the operator, never by a repository.</summary>
public sealed record BoxContainerSpec(
    string Name,
    IReadOnlyDictionary<string, string> Labels,
    string WorkspaceSource,
    string RunsSource,
    string MirrorSource,
    string Network,
    long MemoryBytes,
    double Cpus,
    long PidsLimit);

/// <summary>
/// A repository's <c>devcontainer.json</c> (JSON with comments), made safe to hand to <c>devcontainer up</c> on the
/// server: what would run on the server's machine (<c>initializeCommand</c>) or reach past the box's walls
/// (<c>runArgs</c>, <c>mounts</c>, <c>privileged</c>, <c>capAdd</c>, <c>securityOpt</c>, a workspace mount of its own,
/// build options) is dropped and reported; the box's own mounts, limits, labels and name are added. Docker Compose
/// configurations are refused (one container per box).
/// </summary>
public static class DevcontainerConfig
{
    /// <summary>Where the Dev Containers spec looks, in order.</summary>
    public static readonly string[] Paths = [".devcontainer/devcontainer.json", ".devcontainer.json"];

    private static readonly string[] Dropped =
        ["runArgs", "mounts", "privileged", "capAdd", "securityOpt", "init", "initializeCommand", "workspaceMount", "workspaceFolder", "appPort", "overrideFeatureInstallOrder"];

    private static readonly JsonDocumentOptions Reading = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 64 };

    /// <summary>The safe configuration, and one note per setting that was dropped.</summary>
    public static (string Json, IReadOnlyList<string> Notes) Sanitize(string text, BoxContainerSpec spec)
    {
        JsonObject config;
        try
        {
            config = JsonNode.Parse(text, documentOptions: Reading) as JsonObject
                ?? throw new DevcontainerConfigException("devcontainer.json must hold a JSON object.");
        }
        catch (JsonException e)
        {
            throw new DevcontainerConfigException($"devcontainer.json is not valid JSON: {e.Message}");
        }
        if (config.ContainsKey("dockerComposeFile"))
        {
            throw new DevcontainerConfigException("devcontainer.json uses Docker Compose (dockerComposeFile); a box is one container: use \"image\" or \"build\".");
        }
        if (!config.ContainsKey("image") && !config.ContainsKey("build") && !config.ContainsKey("dockerFile"))
        {
            throw new DevcontainerConfigException("devcontainer.json names no \"image\" and no \"build\"; say which image the box starts from.");
        }
        var notes = new List<string>();
        foreach (var key in Dropped.Where(config.ContainsKey))
        {
            config.Remove(key);
            notes.Add($"ignored \"{key}\": the box's mounts, limits and privileges are the server's");
        }
        if (config["build"] is JsonObject build && build.ContainsKey("options"))
        {
            build.Remove("options");
            notes.Add("ignored \"build.options\": build flags are the server's");
        }

        config["workspaceMount"] = $"source={spec.WorkspaceSource},target={Execution.Isolated.Workspace},type=bind";
        config["workspaceFolder"] = Execution.Isolated.Workspace;
        config["mounts"] = new JsonArray(
            $"source={spec.RunsSource},target={Execution.Containers.ContainerExecBackend.RuntimeMount},type=bind",
            $"source={spec.MirrorSource},target={BoxContainers.MirrorMount},type=bind,readonly");
        var runArgs = new JsonArray(
            "--name", spec.Name,
            "--network", spec.Network,
            "--memory", spec.MemoryBytes.ToString(CultureInfo.InvariantCulture),
            "--cpus", spec.Cpus.ToString(CultureInfo.InvariantCulture),
            "--pids-limit", spec.PidsLimit.ToString(CultureInfo.InvariantCulture),
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--tmpfs", $"{BoxContainers.SecretsMount}:rw,nosuid,nodev,noexec,size=1m,mode=1777",
            "--init");
        foreach (var (key, value) in spec.Labels)
        {
            runArgs.Add("--label");
            runArgs.Add($"{key}={value}");
        }
        config["runArgs"] = runArgs;
        return (config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), notes);
    }
}
