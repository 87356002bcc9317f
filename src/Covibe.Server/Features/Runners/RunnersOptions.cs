using System.ComponentModel.DataAnnotations;

namespace Covibe.Server.Features.Runners;

/// <summary><c>Covibe:Runners</c>: runner VMs (seed 001's polling and tunnel strategies).</summary>
public sealed class RunnersOptions
{
    public const string Section = "Covibe:Runners";

    /// <summary>How long a registration token can be used (once).</summary>
    [Range(1, 7 * 24 * 60)]
    public int RegistrationMinutes { get; set; } = 60;

    /// <summary>How often a runner says it is alive (each heartbeat renews its lease).</summary>
    [Range(1, 300)]
    public int HeartbeatSeconds { get; set; } = 15;

    /// <summary>How long the server waits for a silent runner before its agents count as lost.</summary>
    [Range(5, 86_400)]
    public int LeaseSeconds { get; set; } = 120;

    /// <summary>How long a long poll (<c>POST /api/runner/poll</c>) waits for something to say before it answers empty.</summary>
    [Range(1, 120)]
    public int PollWaitSeconds { get; set; } = 25;

    /// <summary>The address runners reach this server at, for the command a registration shows; by default the address the owner used.</summary>
    public string? PublicUrl { get; set; }
}
