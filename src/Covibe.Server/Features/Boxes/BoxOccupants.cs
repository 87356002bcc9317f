namespace Covibe.Server.Features.Boxes;

/// <summary>
/// What runs in a box and must stop when the box is released (the member's agents in it; the Agents feature answers).
/// A seam, so that boxes need not know agents while agents run in boxes.
/// </summary>
public interface IBoxOccupants
{
    Task StopAsync(string boxId, CancellationToken cancellationToken);
}
