using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// The wake-ups between the allocator and the background workers: a box to provision (or clean up), a pool to look
/// at again; and where each box keeps its files on this machine. One per server process, named by
/// <see cref="Node"/> in the leases it takes.
/// </summary>
public sealed class BoxWork(IOptions<ServerOptions> server, Cluster.ThisNode node) : IDisposable
{
    private readonly SemaphoreSlim _provision = new(0, 1);
    private readonly SemaphoreSlim _reconcile = new(0, 1);

    /// <summary>This server process, as lease holder.</summary>
    public string Node => node.Id;

    public void Provision() => Wake(_provision);

    public void Reconcile() => Wake(_reconcile);

    /// <summary>
    /// After a claim: the pool refills a moment later, so a burst of claims is answered before the refill's container
    /// work competes with it for the CPU (members' requests first), and is refilled in one pass.
    /// </summary>
    public void ReconcileAfterClaim() => _ = Task.Delay(ClaimSettle).ContinueWith(_ => Wake(_reconcile), TaskScheduler.Default);

    private static readonly TimeSpan ClaimSettle = TimeSpan.FromMilliseconds(500);

    public Task<bool> ProvisionRequestedAsync(TimeSpan timeout, CancellationToken cancellationToken) => _provision.WaitAsync(timeout, cancellationToken);

    public Task<bool> ReconcileRequestedAsync(TimeSpan timeout, CancellationToken cancellationToken) => _reconcile.WaitAsync(timeout, cancellationToken);

    private string Boxes => Path.Combine(server.Value.DataDirectory, "boxes");

    /// <summary>A box's directory on this machine: its repository (<c>workspace</c>), its agents' runtime directories (<c>runs</c>), its provisioning log.</summary>
    public string Root(string boxId) => Path.Combine(Boxes, boxId);

    public string WorkspacePath(string boxId) => Path.Combine(Root(boxId), "workspace");

    public string RunsPath(string boxId) => Path.Combine(Root(boxId), "runs");

    public string LogPath(string boxId) => Path.Combine(Root(boxId), "provision.log");

    /// <summary>The team's mirror of a repository (one per team and address: a team's mirror never serves another team).</summary>
    public string MirrorPath(string teamId, string repoUrl) =>
        Path.Combine(Boxes, ".mirrors", teamId,
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(repoUrl)))[..24] + ".git");

    public void Dispose()
    {
        _provision.Dispose();
        _reconcile.Dispose();
    }

    private static void Wake(SemaphoreSlim signal)
    {
        try
        {
            signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // A wake-up is pending already.
        }
    }
}
