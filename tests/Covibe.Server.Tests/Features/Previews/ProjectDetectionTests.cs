using Covibe.Server.Features.Previews;

namespace Covibe.Server.Tests;

/// <summary>Seed 003's project type detection, as a pure function of a repository's top-level files.</summary>
public sealed class ProjectDetectionTests
{
    private sealed class Files(Dictionary<string, string> files) : IProjectFiles
    {
        public bool Exists(string name) => files.ContainsKey(name);

        public string? Read(string name) => files.GetValueOrDefault(name);
    }

    private static PreviewPlan Detect(Dictionary<string, string> files, bool containers = false) => ProjectDetection.Detect(new Files(files), containers);

    [Fact]
    public void Node_WithALockfileAndScripts_InstallsCleanly_Builds_AndStarts()
    {
        var plan = Detect(new()
        {
            ["package.json"] = """{"scripts": {"build": "vite build", "start": "node server.js"}, "dependencies": {"express": "5"}}""",
            ["package-lock.json"] = "{}",
        });
        plan.Type.ShouldBe("node");
        plan.Build.ShouldBe("npm ci --no-audit --no-fund && npm run build");
        plan.Start.ShouldBe("npm start");
    }

    [Fact]
    public void Node_WithoutAStartScript_RunsItsEntryFile_OrServesItsBuildOutput()
    {
        Detect(new() { ["package.json"] = """{"main": "app.js"}""", ["app.js"] = "" }).Start.ShouldBe("exec node 'app.js'");
        var site = Detect(new() { ["package.json"] = """{"scripts": {"build": "vite build"}, "devDependencies": {"vite": "7"}}""", ["vite.config.js"] = "" });
        (site.Type, site.Start, site.StaticRoot, site.Build).ShouldBe(("node-static", (string?)null, (string?)"dist", (string?)"npm install --no-audit --no-fund && npm run build"));
        Should.Throw<ProjectFileException>(() => Detect(new() { ["package.json"] = """{"name": "x"}""" })).Message.ShouldContain("\"start\"");
    }

    [Fact]
    public void Python_Static_AndTheOrderBetweenThem()
    {
        var python = Detect(new() { ["requirements.txt"] = "flask", ["app.py"] = "", ["index.html"] = "" });
        python.Type.ShouldBe("python");
        python.Build.ShouldBe("python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt");
        python.Start.ShouldBe("exec .venv/bin/python app.py");
        Detect(new() { ["pyproject.toml"] = "", ["manage.py"] = "" }).Start!.ShouldContain("manage.py runserver 127.0.0.1:$PORT");
        var site = Detect(new() { ["index.html"] = "<h1>hi</h1>" });
        (site.Type, site.Build, site.Start, site.StaticRoot, site.HealthPath).ShouldBe(("static", (string?)null, (string?)null, (string?)".", "/"));
    }

    [Fact]
    public void ADockerfile_IsUsedWhereContainersRunPreviews_AndOtherwiseTheProjectFallsBackToAProcess()
    {
        var files = new Dictionary<string, string> { ["Dockerfile"] = "FROM node", ["package.json"] = """{"scripts": {"start": "node ."}}""" };
        Detect(files, containers: true).ContainerFile.ShouldBe("Dockerfile");
        Detect(files, containers: false).Type.ShouldBe("node");
        Detect(new() { ["Containerfile"] = "FROM x" }, containers: true).ContainerFile.ShouldBe("Containerfile");
        Should.Throw<ProjectFileException>(() => Detect(new() { ["Dockerfile"] = "FROM x" })).Message.ShouldContain("USE_DOCKER_PREVIEW");
    }

    [Fact]
    public void TheTeamsOwnFile_SaysHow_AndAMistakeInItIsExplained()
    {
        var plan = Detect(new()
        {
            ["covibe.preview.json"] = """{"build": "make site", "start": "./serve --port $PORT", "health": "/healthz", "port": 8080}""",
            ["package.json"] = """{"scripts": {"start": "ignored"}}""",
        });
        (plan.Type, plan.Build, plan.Start, plan.HealthPath, plan.Port).ShouldBe(("custom", (string?)"make site", (string?)"./serve --port $PORT", "/healthz", (int?)8080));
        Detect(new() { ["covibe.preview.json"] = """{"static": "public"}""" }).StaticRoot.ShouldBe("public");

        foreach (var (config, says) in new[]
        {
            ("not json", "not valid JSON"),
            ("[1]", "JSON object"),
            ("""{"build": "make"}""", "\"start\""),
            ("""{"start": "x", "port": "80"}""", "\"port\""),
            ("""{"start": "x", "health": "http://evil/"}""", "\"health\""),
            ("""{"static": "../../etc"}""", "inside the repository"),
            ("""{"static": "/etc"}""", "inside the repository"),
            ("""{"start": 3}""", "non-empty string"),
        })
        {
            Should.Throw<ProjectFileException>(() => Detect(new() { ["covibe.preview.json"] = config })).Message.ShouldContain(says, customMessage: config);
        }
    }

    [Fact]
    public void NothingToRun_SaysWhatWasLookedFor()
    {
        Should.Throw<ProjectFileException>(() => Detect(new() { ["README.md"] = "hi" })).Message.ShouldContain("covibe.preview.json");
    }
}
