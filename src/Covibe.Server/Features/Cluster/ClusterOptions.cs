namespace Covibe.Server.Features.Cluster;

/// <summary><c>Covibe:Cluster</c>: several <c>covibe serve</c> nodes on one PostgreSQL and one Redis (seed 001's Phase 2).</summary>
public sealed class ClusterOptions
{
    public const string Section = "Covibe:Cluster";

    /// <summary>Seed 001's Redis (<c>REDIS_URL</c>, <c>redis://[:password@]host[:port][/db]</c>); unset: one node, everything in-process.</summary>
    public string? RedisUrl { get; set; }

    /// <summary>The Redis channel nodes tell each other their teams' events on.</summary>
    public string Channel { get; set; } = "covibe:team-events";

    /// <summary>What the keys Covibe keeps in Redis (rate-limit counters) start with.</summary>
    public string KeyPrefix { get; set; } = "covibe";

    /// <summary>
    /// Where the other nodes reach this one (<c>NODE_URL</c>, e.g. <c>http://10.0.0.11:5180</c>): they attach their clients to
    /// this node's terminals through it. Unset: the address it listens on (<see cref="NodeUrl"/>).
    /// </summary>
    public string? NodeUrl { get; set; }

    /// <summary>
    /// Seed 001's <c>agent:{agentId}:output</c>: how much of each agent's latest output Redis keeps, for nodes that can read
    /// neither their memory nor the agent's log (<c>&lt;KeyPrefix&gt;:agent:&lt;id&gt;:output</c>, a stream trimmed to about this).
    /// </summary>
    [System.ComponentModel.DataAnnotations.Range(0, 256 * 1024 * 1024)]
    public int OutputBufferBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>How long an agent's output stays in Redis after its last byte.</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 24 * 365)]
    public int OutputKeptHours { get; set; } = 24;
}
