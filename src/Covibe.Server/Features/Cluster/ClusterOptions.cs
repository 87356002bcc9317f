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
}
