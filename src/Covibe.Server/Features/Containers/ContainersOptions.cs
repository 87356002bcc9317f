using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Covibe.Server.Features.Containers;

/// <summary>
/// <c>Covibe:Containers</c>: seed 003's Docker infrastructure. <c>USE_DOCKER_CONTAINERS</c>
/// (everything), <c>USE_DOCKER_AGENTS</c>, <c>USE_DOCKER_PREVIEW</c>, <c>DOCKER_HOST</c>,
/// <c>AGENT_IMAGE</c> and <c>CLAUDE_API_KEY</c> map here; limits default to seed 003's values.
/// </summary>
public sealed class ContainersOptions
{
    public const string Section = "Covibe:Containers";
    public const string DefaultImage = "covibe-agent:local";

    /// <summary><c>USE_DOCKER_CONTAINERS</c>: agents, terminals and previews in containers.</summary>
    public bool Enabled { get; set; }

    /// <summary><c>USE_DOCKER_AGENTS</c>: agents and terminals in containers.</summary>
    public bool Agents { get; set; }

    /// <summary><c>USE_DOCKER_PREVIEW</c>: the shared preview in a container.</summary>
    public bool Preview { get; set; }

    /// <summary><c>DOCKER_HOST</c>: the engine's address. Unset: <c>unix:///var/run/docker.sock</c>, else Podman's <c>unix:///run/podman/podman.sock</c>.</summary>
    public string? Host { get; set; }

    /// <summary><c>AGENT_IMAGE</c>: the image of agent and terminal containers (<c>covibe image build</c> makes the default).</summary>
    [Required]
    public string Image { get; set; } = DefaultImage;

    /// <summary>
    /// The network a team's containers join: <c>team</c> (the default), a bridge of the team's own, isolated from other
    /// teams' (the internet, for Claude's API); <c>bridge</c> or another of the engine's networks, shared by every team;
    /// <c>none</c>: no network.
    /// </summary>
    [RegularExpression("^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    public string Network { get; set; } = Execution.Containers.ContainerSettings.PerTeam;

    /// <summary>
    /// With a network per team: whether teams' containers may also reach private ranges (10/8, 172.16/12, 192.168/16,
    /// 100.64/10: a company's own git server or registry). Link-local addresses (cloud metadata), other teams and this
    /// machine stay out of reach either way.
    /// </summary>
    public bool PrivateNetworks { get; set; }

    /// <summary>A team's network no container has been on for this long is removed (made again with its next container).</summary>
    [Range(0, 10080)] public int NetworkIdleMinutes { get; set; } = 60;

    /// <summary>When the engine is down or refuses: <c>host</c> runs the agent on this machine (sandboxed) and says so; <c>none</c> refuses the spawn.</summary>
    [RegularExpression("^(host|none)$", ErrorMessage = "Covibe:Containers:Fallback must be 'host' or 'none'.")]
    public string Fallback { get; set; } = "host";

    /// <summary><c>CLAUDE_API_KEY</c>: given to agent containers (as ANTHROPIC_API_KEY too), never logged.</summary>
    public string? ClaudeApiKey { get; set; }

    [RegularExpression(SizePattern)] public string AgentMemory { get; set; } = "2g";
    [Range(0.01, 1024)] public double AgentCpus { get; set; } = 1.0;
    [RegularExpression(SizePattern)] public string AgentMemoryReservation { get; set; } = "512m";
    [Range(0.01, 1024)] public double AgentCpuReservation { get; set; } = 0.25;
    [RegularExpression(SizePattern)] public string PreviewMemory { get; set; } = "1g";
    [Range(0.01, 1024)] public double PreviewCpus { get; set; } = 0.5;
    [RegularExpression(SizePattern)] public string PreviewMemoryReservation { get; set; } = "256m";
    [Range(0.01, 1024)] public double PreviewCpuReservation { get; set; } = 0.1;

    /// <summary>Seed 003's health checks (run from the server: Podman runs HEALTHCHECK only under systemd).</summary>
    [Range(1, 3600)] public int HealthCheckIntervalSeconds { get; set; } = 30;
    [Range(1, 600)] public int HealthCheckTimeoutSeconds { get; set; } = 5;
    [Range(1, 100)] public int HealthCheckRetries { get; set; } = 3;

    /// <summary>
    /// How long an answer of the engine is trusted before it is asked again (a call that finds it gone marks it down at
    /// once; down, it is asked again after 2 s at most, and is up once it answers).
    /// </summary>
    [Range(1, 3600)] public int EngineCheckSeconds { get; set; } = 5;

    /// <summary>A labelled container the database does not know is removed once it is this old (younger, its row may be on its way).</summary>
    [Range(0, 3600)] public int OrphanGraceSeconds { get; set; } = 60;

    private const string SizePattern = "^[0-9]+[bkmgBKMG]?$";

    public bool ForAgents => Enabled || Agents;

    public bool ForPreview => Enabled || Preview;

    public string EngineAddress => Host is { Length: > 0 } host ? host
        : File.Exists("/var/run/docker.sock") || !File.Exists("/run/podman/podman.sock") ? "unix:///var/run/docker.sock"
        : "unix:///run/podman/podman.sock";

    /// <summary>Docker's size notation: <c>512m</c>, <c>2g</c>, <c>1024k</c>, <c>100</c> (bytes).</summary>
    public static long Bytes(string size)
    {
        var unit = char.ToLowerInvariant(size[^1]);
        var digits = char.IsDigit(unit) ? size : size[..^1];
        var value = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        return unit switch
        {
            'k' => value * 1024,
            'm' => value * 1024 * 1024,
            'g' => value * 1024 * 1024 * 1024,
            _ => value,
        };
    }
}
