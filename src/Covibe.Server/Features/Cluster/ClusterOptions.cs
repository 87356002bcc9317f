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
}
