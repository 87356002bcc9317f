using System.ComponentModel.DataAnnotations;

namespace Covibe.Server.Features.Agents;

/// <summary><c>Covibe:Agents</c>; seed 000's <c>USE_MOCK_AGENTS</c> maps here (seed 003's <c>WORKSPACE_BASE</c>, under the same section, is <see cref="Machines.WorkspacesOptions"/>).</summary>
public sealed class AgentsOptions
{
    public const string Section = "Covibe:Agents";

    /// <summary>Seed 000: route every spawn to the built-in mock agent.</summary>
    public bool UseMockAgents { get; set; }

    /// <summary>Agent types by name, added to or replacing the built-in <c>claude</c> and <c>mock</c>.</summary>
    public Dictionary<string, AgentTypeOptions> Types { get; set; } = [];

    /// <summary>Environment variables of the server passed on to agents (nothing else is, so the server's secrets stay with it).</summary>
    public List<string> PassEnvironment { get; set; } = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "ANTHROPIC_API_KEY", "CLAUDE_API_KEY", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"];

    /// <summary>Recent output kept in memory per agent for live fan-out; older output is read back from the log.</summary>
    [Range(64 * 1024, 256 * 1024 * 1024)]
    public int RingBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// How often the log of an agent on an SSH VM is checked for new output. Logs on this machine
    /// (sandbox, container) are read as soon as they are written (inotify) and need no polling.
    /// </summary>
    [Range(1, 1000)]
    public int PollMilliseconds { get; set; } = 15;

    /// <summary>
    /// Output that arrives within this long of the previous chunk waits and goes out with it: one
    /// frame per watcher for many small writes. Output after a quiet spell goes out at once. The
    /// latency a streaming agent's watchers see, traded for CPU (docs/benchmarks.md).
    /// </summary>
    [Range(0, 1000)]
    public int BatchMilliseconds { get; set; } = 4;

    /// <summary>
    /// Frames the agents' output may make per second on this node, over all their watchers: with many watchers (of one
    /// agent or of several), chunks gather for longer (1,000 watchers: 40 ms), so the server sends fewer, larger frames
    /// instead of falling behind.
    /// </summary>
    [Range(1000, 10_000_000)]
    public int MaxFramesPerSecond { get; set; } = 25_000;

    /// <summary>Mock agent pacing (seed 000's "configurable execution timing").</summary>
    [Range(0, 60_000)]
    public int MockDelayMilliseconds { get; set; } = 400;

    [Range(1, 10_000)]
    public int MockSteps { get; set; } = 6;

    /// <summary>Spawns allowed per member per minute (seed 001: "rate limiting agent spawning").</summary>
    [Range(1, 10_000)]
    public int SpawnsPerMinute { get; set; } = 20;

    /// <summary>Agents a team may have unfinished at once (seed 001 plans for about 5 per team).</summary>
    [Range(1, 10_000)]
    public int MaxActivePerTeam { get; set; } = 10;

    /// <summary>Grace between SIGTERM and SIGKILL when an agent is killed.</summary>
    [Range(0, 600)]
    public int KillGraceSeconds { get; set; } = 5;

    /// <summary>
    /// Several nodes: how long a node's claim to follow an agent lasts without being renewed (every quarter of it). A
    /// node that dies leaves its agents to another within this many seconds, plus a quarter.
    /// </summary>
    [Range(2, 600)]
    public int LeaseSeconds { get; set; } = 10;

    /// <summary>
    /// How long a permission prompt waits for an answer before it is denied with a message (the agent then goes on, told why).
    /// Claude itself never gives up waiting; the server does.
    /// </summary>
    [Range(1, 7 * 24 * 3600)]
    public int ApprovalTimeoutSeconds { get; set; } = 600;

    /// <summary>What agents that ask the server (<see cref="AgentTypeOptions.Permissions"/> <c>host</c>) may do without asking.</summary>
    public PermissionsOptions Permissions { get; set; } = new();

    /// <summary>The operator's ceilings on what any one team's agents spend (owners set their budgets within them).</summary>
    public BudgetCeilingOptions Budgets { get; set; } = new();
}

/// <summary>
/// <c>Covibe:Agents:Budgets</c>: what one team's agents may spend, in US dollars, per UTC day and per calendar month (unset: no
/// ceiling). A team at its ceiling is refused new agents as at a budget its owner set; an owner's budget cannot be set above it.
/// </summary>
public sealed class BudgetCeilingOptions
{
    [Range(0, 1_000_000_000)]
    public double? TeamUsdPerDay { get; set; }

    [Range(0, 1_000_000_000)]
    public double? TeamUsdPerMonth { get; set; }

    internal double? For(string period) => period == Protocol.BudgetPeriods.Day ? TeamUsdPerDay : TeamUsdPerMonth;
}

/// <summary><c>Covibe:Agents:Permissions</c>: the operator's frame for the team's approvals.</summary>
public sealed class PermissionsOptions
{
    /// <summary>The mode of an agent spawned without one: <c>ask</c>, <c>ask-but-allow-reads</c> or (if allowed) <c>bypass</c>.</summary>
    [RegularExpression("^(ask|ask-but-allow-reads|bypass)$")]
    public string Mode { get; set; } = Protocol.PermissionModes.Ask;

    /// <summary>Whether members may run agents that ask nothing (<c>bypass</c>).</summary>
    public bool AllowBypass { get; set; }

    /// <summary>Rules that allow without asking, in Claude's settings shape: <c>Bash(npm test)</c>, <c>Bash(git status:*)</c>, <c>Read</c>.</summary>
    public List<string> Allow { get; set; } = [];

    /// <summary>Rules that deny without asking (they win over everything, bypass included).</summary>
    public List<string> Deny { get; set; } = [];

    internal IReadOnlyList<PermissionRule> AllowRules => [.. Allow.Select(r => PermissionRule.Parse(r, out _)).OfType<PermissionRule>()];

    internal IReadOnlyList<PermissionRule> DenyRules => [.. Deny.Select(r => PermissionRule.Parse(r, out _)).OfType<PermissionRule>()];

    /// <summary>The first rule that is not one, with why; null when all are.</summary>
    internal string? Problem() =>
        Allow.Concat(Deny).Select(r => { PermissionRule.Parse(r, out var problem); return problem; }).FirstOrDefault(p => p is not null)
        ?? (Mode == Protocol.PermissionModes.Bypass && !AllowBypass ? "Covibe:Agents:Permissions:Mode is bypass, which AllowBypass does not allow." : null);
}

/// <summary>
/// One agent type: the argv to run (<c>{task}</c> is replaced by the task, as one argument; no
/// shell is involved), extra environment, and a working directory relative to the workspace.
/// </summary>
public sealed class AgentTypeOptions
{
    public List<string> Command { get; set; } = [];

    /// <summary>Added after <see cref="Command"/>, e.g. <c>--dangerously-skip-permissions</c> or <c>--model</c>.</summary>
    public List<string> ExtraArgs { get; set; } = [];

    public Dictionary<string, string> Environment { get; set; } = [];

    public string? Description { get; set; }

    /// <summary>
    /// <c>raw</c>: input is written to stdin as sent. <c>stream-json</c> (Claude's
    /// <c>--input-format stream-json</c>): the task is the first user message, input is sent as user
    /// messages, interrupt as a control request, and the agent waits for input between turns.
    /// </summary>
    [RegularExpression("^(raw|stream-json)$")]
    public string InputFormat { get; set; } = "raw";

    /// <summary>
    /// With <c>stream-json</c> input: <c>many</c> (a conversation: it waits for input after each turn) or <c>one</c> (the task is
    /// its one turn: its input is closed after the first result).
    /// </summary>
    [RegularExpression("^(one|many)$")]
    public string Turns { get; set; } = "many";

    /// <summary>
    /// <c>host</c>: the agent asks the server before using a tool (Claude's <c>--permission-prompt-tool stdio</c>: a control request
    /// on stdout, the answer on stdin, which stays open), and the team answers (issue 26); <c>flags</c>: nothing is asked, the
    /// command's own flags decide (e.g. <c>--dangerously-skip-permissions</c>).
    /// </summary>
    [RegularExpression("^(host|flags)$")]
    public string Permissions { get; set; } = "flags";

    internal bool IsStreamJson => InputFormat == "stream-json";

    internal bool IsConversational => IsStreamJson && Turns == "many";

    internal bool AsksHost => Permissions == "host";
}
