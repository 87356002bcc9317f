using System.Text.Json;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// How to build and serve a commit: <see cref="Build"/> (a shell command, or null), <see cref="Start"/> (a shell
/// command that serves on <c>$PORT</c>, or null for <see cref="StaticRoot"/>: the files there are served as they are),
/// <see cref="Port"/> when the app insists on its own, the <see cref="HealthPath"/> that must answer before it goes
/// live, and <see cref="ContainerFile"/> when the repository brings its own image (Dockerfile or Containerfile).
/// </summary>
public sealed record PreviewPlan(string Type, string? Build, string? Start, string? StaticRoot, int? Port, string HealthPath, string? ContainerFile = null);

/// <summary>A repository's top-level files, read without following symlinks (the repository is untrusted).</summary>
public interface IProjectFiles
{
    bool Exists(string name);

    /// <summary>The file's text (at most 256 KiB), or null if it is not a regular file.</summary>
    string? Read(string name);
}

public sealed class ProjectFileException(string message) : Exception(message);

/// <summary>
/// Seed 003's project type detection, as a pure function of the repository's top-level files, in this order:
/// <c>covibe.preview.json</c> (the team says how), a Dockerfile or Containerfile (only where a container engine
/// runs previews), Node (<c>package.json</c>), Python (<c>requirements.txt</c>, <c>pyproject.toml</c>), static
/// (<c>index.html</c>).
/// </summary>
public static class ProjectDetection
{
    public const string ConfigFile = "covibe.preview.json";

    public static PreviewPlan Detect(IProjectFiles files, bool containers)
    {
        if (files.Read(ConfigFile) is { } config)
        {
            return FromConfig(config, files, containers);
        }
        if (containers && ContainerFileOf(files) is { } containerFile)
        {
            return new PreviewPlan("container", null, null, null, null, "/", containerFile);
        }
        if (files.Read("package.json") is { } packageJson)
        {
            return Node(packageJson, files);
        }
        if (files.Exists("requirements.txt") || files.Exists("pyproject.toml"))
        {
            return Python(files);
        }
        if (files.Exists("index.html"))
        {
            return new PreviewPlan("static", null, null, ".", null, "/");
        }
        throw new ProjectFileException(
            $"Nothing to run was found at the top of the repository: no {ConfigFile}, package.json, requirements.txt, pyproject.toml or index.html"
            + (containers ? ", Dockerfile or Containerfile." : ". (A Dockerfile needs a container engine for previews: USE_DOCKER_PREVIEW.)")
            + $" Add {ConfigFile} with \"start\" (and \"build\") commands.");
    }

    private static string? ContainerFileOf(IProjectFiles files) =>
        files.Exists("Dockerfile") ? "Dockerfile" : files.Exists("Containerfile") ? "Containerfile" : null;

    private static PreviewPlan FromConfig(string text, IProjectFiles files, bool containers)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ProjectFileException($"{ConfigFile} is not valid JSON: {e.Message}");
        }
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ProjectFileException($"{ConfigFile} must be a JSON object like {{\"build\": \"npm ci\", \"start\": \"npm start\", \"health\": \"/\"}}.");
        }
        var build = OptionalString(root, "build");
        var start = OptionalString(root, "start");
        var staticRoot = OptionalString(root, "static");
        var health = OptionalString(root, "health") ?? "/";
        int? port = null;
        if (root.TryGetProperty("port", out var portValue))
        {
            if (portValue.ValueKind != JsonValueKind.Number || !portValue.TryGetInt32(out var p) || p is < 1 or > 65535)
            {
                throw new ProjectFileException($"{ConfigFile}: \"port\" must be a number from 1 to 65535 (better: leave it out and listen on $PORT).");
            }
            port = p;
        }
        if (!health.StartsWith('/') || health.StartsWith("//", StringComparison.Ordinal))
        {
            throw new ProjectFileException($"{ConfigFile}: \"health\" must be a path on the preview, like \"/\" or \"/health\".");
        }
        if (staticRoot is not null && (Path.IsPathRooted(staticRoot) || staticRoot.Split('/').Contains("..")))
        {
            throw new ProjectFileException($"{ConfigFile}: \"static\" must be a directory inside the repository, like \"dist\".");
        }
        if (start is null && staticRoot is null)
        {
            if (containers && ContainerFileOf(files) is { } containerFile)
            {
                return new PreviewPlan("container", build, null, null, port, health, containerFile);
            }
            throw new ProjectFileException($"{ConfigFile} needs \"start\" (a command that serves on $PORT) or \"static\" (a directory of files to serve).");
        }
        return new PreviewPlan("custom", build, start, start is null ? staticRoot : null, port, health);
    }

    private static string? OptionalString(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
        {
            throw new ProjectFileException($"{ConfigFile}: \"{name}\" must be a non-empty string.");
        }
        return value.GetString();
    }

    private static PreviewPlan Node(string packageJson, IProjectFiles files)
    {
        var scripts = new Dictionary<string, string>();
        string? main = null;
        try
        {
            using var document = JsonDocument.Parse(packageJson, new JsonDocumentOptions { AllowTrailingCommas = true });
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                if (document.RootElement.TryGetProperty("scripts", out var s) && s.ValueKind == JsonValueKind.Object)
                {
                    foreach (var script in s.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.String))
                    {
                        scripts[script.Name] = script.Value.GetString()!;
                    }
                }
                if (document.RootElement.TryGetProperty("main", out var m) && m.ValueKind == JsonValueKind.String)
                {
                    main = m.GetString();
                }
            }
        }
        catch (JsonException e)
        {
            throw new ProjectFileException($"package.json is not valid JSON: {e.Message}");
        }
        var install = files.Exists("package-lock.json") || files.Exists("npm-shrinkwrap.json") ? "npm ci" : "npm install";
        var hasDependencies = packageJson.Contains("\"dependencies\"", StringComparison.Ordinal) || packageJson.Contains("\"devDependencies\"", StringComparison.Ordinal);
        var steps = new List<string>();
        if (hasDependencies)
        {
            steps.Add(install + " --no-audit --no-fund");
        }
        if (scripts.ContainsKey("build"))
        {
            steps.Add("npm run build");
        }
        var build = steps.Count > 0 ? string.Join(" && ", steps) : null;
        if (scripts.ContainsKey("start"))
        {
            return new PreviewPlan("node", build, "npm start", null, null, "/");
        }
        foreach (var entry in new[] { main, "server.js", "index.js", "app.js" })
        {
            if (entry is not null && files.Exists(entry))
            {
                return new PreviewPlan("node", build, "exec node " + Covibe.Execution.ShellWords.Quote(entry), null, null, "/");
            }
        }
        if (scripts.ContainsKey("build"))
        {
            // A front-end without a server: its build output is the site.
            return new PreviewPlan("node-static", build, null, files.Exists("vite.config.js") || files.Exists("vite.config.ts") ? "dist" : "build", null, "/");
        }
        throw new ProjectFileException($"package.json has no \"start\" script and there is no server.js, index.js or app.js: add a \"start\" script that serves on $PORT, or {ConfigFile}.");
    }

    private static PreviewPlan Python(IProjectFiles files)
    {
        var install = files.Exists("requirements.txt") ? ".venv/bin/pip install -q -r requirements.txt" : ".venv/bin/pip install -q .";
        var build = "python3 -m venv .venv && " + install;
        if (files.Exists("manage.py"))
        {
            return new PreviewPlan("python", build, "exec .venv/bin/python manage.py runserver 127.0.0.1:$PORT --noreload", null, null, "/");
        }
        foreach (var entry in new[] { "app.py", "main.py", "server.py" })
        {
            if (files.Exists(entry))
            {
                return new PreviewPlan("python", build, "exec .venv/bin/python " + entry, null, null, "/");
            }
        }
        throw new ProjectFileException($"A Python project needs app.py, main.py, server.py or manage.py at the top (serving on $PORT), or {ConfigFile}.");
    }

}
