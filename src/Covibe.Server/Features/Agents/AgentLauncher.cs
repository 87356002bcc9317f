using Covibe.Execution;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Agents;

/// <summary>Turns a spawn request into what the backend runs: argv, environment, directories.</summary>
public sealed class AgentLauncher(IOptions<AgentsOptions> options, Repositories.TeamMirrors mirrors)
{
    public const string Claude = "claude";
    public const string ClaudeChat = "claude-chat";
    public const string Mock = "mock";
    public const string MockCodeWriter = "mock-code-writer";

    private static readonly string[] ClaudeHosted =
        ["claude", "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose", "--permission-prompt-tool", "stdio"];

    /// <summary>Seed 000/003 agent types that are ways of asking Claude, not programs of their own.</summary>
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["general"] = Claude,
        ["code-writer"] = Claude,
    };

    public IReadOnlyDictionary<string, AgentTypeOptions> Types
    {
        get
        {
            var types = new Dictionary<string, AgentTypeOptions>(StringComparer.OrdinalIgnoreCase)
            {
                // The task goes in as the first stream-json message, so that the team can answer Claude's permission prompts
                // on the same input (STREAM_JSON.md 7.3); a one-turn agent's input is closed after its result.
                [Claude] = new()
                {
                    Command = [.. ClaudeHosted],
                    InputFormat = "stream-json",
                    Turns = "one",
                    Permissions = "host",
                    Description = "Claude Code in headless stream-json mode; the team approves the tools it asks to use",
                },
                [ClaudeChat] = new()
                {
                    Command = [.. ClaudeHosted],
                    InputFormat = "stream-json",
                    Permissions = "host",
                    Description = "Claude Code as a conversation: send more input after each turn",
                },
                [Mock] = MockType("general"),
                [MockCodeWriter] = MockType("code-writer"),
            };
            foreach (var (name, type) in options.Value.Types)
            {
                // A configured type without a command refines the built-in one (flags, environment).
                if (type.Command.Count == 0 && types.TryGetValue(name, out var builtIn))
                {
                    type.Command = builtIn.Command;
                    type.InputFormat = builtIn.InputFormat;
                    type.Turns = builtIn.Turns;
                    type.Permissions = builtIn.Permissions;
                }
                types[name] = type;
            }
            return types;
        }
    }

    /// <summary>The type a request resolves to, or null with the reason when there is none.</summary>
    public (string? Type, string? Problem) Resolve(string? requested)
    {
        var name = string.IsNullOrWhiteSpace(requested) ? Claude : requested.Trim();
        if (options.Value.UseMockAgents)
        {
            // Seed 000: USE_MOCK_AGENTS routes every spawn to the mock, keeping the flavour asked for.
            return (name.Contains("code-writer", StringComparison.OrdinalIgnoreCase) ? MockCodeWriter : Mock, null);
        }
        name = Aliases.GetValueOrDefault(name, name);
        var types = Types;
        if (!types.ContainsKey(name))
        {
            return (null, $"Unknown agent type '{name}'. This server knows: {string.Join(", ", types.Keys.Order())}.");
        }
        var program = types[name].Command.FirstOrDefault();
        if (program is null || !IsRunnable(program, types[name].Environment.GetValueOrDefault("PATH")))
        {
            return (null, $"The '{name}' agent runs '{program}', which is not installed on this server. " +
                "Install it (for Claude Code: npm install -g @anthropic-ai/claude-code), configure another command, or set USE_MOCK_AGENTS=true for the mock agent.");
        }
        return (name, null);
    }

    /// <summary>What runs for <paramref name="agent"/> where <paramref name="placement"/> says, with the environment it allows.</summary>
    public AgentLaunch Launch(Agent agent, Place placement)
    {
        var type = Types[agent.Type];
        var argv = type.Command.Select(a => a.Replace("{task}", agent.Task, StringComparison.Ordinal)).Concat(type.ExtraArgs).ToList();
        if (type.AsksHost && agent.PermissionMode == Protocol.PermissionModes.Bypass)
        {
            // Nothing to ask: Claude does not send the prompts at all.
            argv.AddRange(["--permission-mode", "bypassPermissions"]);
        }
        // The mock runs this covibe build: where the placement has its own (a container's image), that one.
        var here = CovibeCommand();
        if (placement.CovibeCommand is { } there && argv.Count >= here.Length && argv.Take(here.Length).SequenceEqual(here))
        {
            argv = [.. there, .. argv.Skip(here.Length)];
        }
        var environment = new Dictionary<string, string>();
        // The server's own variables only where the placement allows them (not on a VM: it has its own environment).
        foreach (var name in placement.PassServerEnvironment ? options.Value.PassEnvironment : [])
        {
            if (Environment.GetEnvironmentVariable(name) is { } value)
            {
                environment[name] = value;
            }
        }
        foreach (var (key, value) in placement.Environment)
        {
            environment[key] = value;
        }
        foreach (var (key, value) in type.Environment)
        {
            environment[key] = value;
        }
        environment["COVIBE_AGENT_ID"] = agent.Id;
        environment["TERM"] = "dumb";
        // On the team's repository: a work tree on its own branch, borrowing the team's mirror here (no clone of the address).
        var tree = agent is { WorkBranch: { } workBranch, BaseCommit: { } baseCommit } ? new WorkTree(mirrors.PathOf(agent.TeamId), baseCommit, workBranch, AgentBranches.StartRef(agent.Id)) : null;
        return placement.Launch(new AgentLaunch(agent.Id, argv, agent.WorkingDirectory, environment, tree is null ? agent.RepositoryUrl : null, tree is null ? agent.Branch : null,
            type.IsStreamJson ? StreamJsonInput.UserMessage(agent.Task) : null, TeamId: agent.TeamId, OwnerId: agent.UserId, Tree: tree));
    }

    private AgentTypeOptions MockType(string kind)
    {
        var o = options.Value;
        return new AgentTypeOptions
        {
            Command = [.. CovibeCommand(), "mock-agent", "--task={task}", "--kind", kind,
                "--delay-ms", o.MockDelayMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--steps", o.MockSteps.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--permission-prompt-tool", "stdio"],
            // Like Claude, it asks before writing a file; the team answers.
            Permissions = "host",
            Description = $"The built-in mock agent ({kind}); needs nothing installed",
        };
    }

    /// <summary>How to run this same <c>covibe</c> build: its native launcher if present, else <c>dotnet covibe.dll</c>.</summary>
    private static string[] CovibeCommand()
    {
        var launcher = Path.Combine(AppContext.BaseDirectory, "covibe");
        if (File.Exists(launcher))
        {
            return [launcher];
        }
        var host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        return [host, Path.Combine(AppContext.BaseDirectory, "covibe.dll")];
    }

    /// <summary>Whether the program exists, looked up on the PATH the agent will have.</summary>
    private static bool IsRunnable(string program, string? path) =>
        program.Contains('/', StringComparison.Ordinal)
            ? File.Exists(program)
            : (path ?? Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Any(dir => File.Exists(Path.Combine(dir, program)));

    /// <summary>Whether the agent's type is a conversation: it waits for more input after each turn.</summary>
    public bool IsConversational(string type) => Types.TryGetValue(type, out var t) && t.IsConversational;

    /// <summary>Whether the agent's type takes stream-json input (user messages, control requests).</summary>
    public bool IsStreamJson(string type) => Types.TryGetValue(type, out var t) && t.IsStreamJson;

    /// <summary>Whether the agent asks the server before using a tool (and so its input must stay open while it runs).</summary>
    public bool AsksHost(string type) => Types.TryGetValue(type, out var t) && t.AsksHost;
}
