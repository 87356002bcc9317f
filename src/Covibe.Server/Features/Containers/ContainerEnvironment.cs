namespace Covibe.Server.Features.Containers;

/// <summary>
/// Seed 003's <c>container_environments</c>: one row per container Covibe made for a team
/// (<see cref="ContainerType"/> <c>agent</c>, <c>preview</c> or <c>sync</c>), kept true by
/// <see cref="ContainerReconciler"/>. <see cref="Metadata"/> is JSON (agent, owner, image, limits, health).
/// </summary>
public sealed class ContainerEnvironment
{
    public int Id { get; init; }
    public required string TeamId { get; init; }
    public required string ContainerType { get; init; }
    public required string ContainerName { get; init; }
    public required string Status { get; set; }
    public int? Port { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
    public string Metadata { get; set; } = "{}";
}

/// <summary>The statuses a row goes through.</summary>
public static class ContainerStatuses
{
    public const string Running = "running";
    public const string Exited = "exited";
    /// <summary>Removed by Covibe when its work was done.</summary>
    public const string Removed = "removed";
    /// <summary>Gone from the engine without Covibe removing it (someone else did, or the engine lost it).</summary>
    public const string Missing = "missing";
}
