using Covibe.Execution.Containers;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Containers;

/// <summary>
/// At start-up, before any container starts: this machine's firewall around teams' networks
/// (<see cref="TeamNetworkFirewall"/>), when each team gets one and the engine runs here (its socket is on this machine).
/// <see cref="Problem"/> says why the wall is not up, for the banner and <c>/health</c> readers.
/// </summary>
public sealed class TeamNetworkWall(IOptions<ContainersOptions> options, ILogger<TeamNetworkWall> logger) : IHostedService
{
    /// <summary>Null once the wall stands, or where none is needed (no network per team); else why it does not.</summary>
    public string? Problem { get; private set; }

    /// <summary>Whether this server tried to put the wall up (each team gets a network, and an engine is in use here).</summary>
    public bool Tried { get; private set; }

    /// <summary>Whether the wall stands on this machine (so teams' egress policies can be enforced at their bridges).</summary>
    public bool Standing => Tried && Problem is null;

    /// <summary>Whether the wall was asked for: each team gets a network of its own.</summary>
    public bool Wanted => options.Value.Network == ContainerSettings.PerTeam;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var socket = o.EngineAddress.StartsWith("unix://", StringComparison.Ordinal) ? o.EngineAddress["unix://".Length..] : null;
        if (!Wanted || !(o.ForAgents || o.ForPreview || File.Exists(socket)))
        {
            return; // no engine in use here (boxes in containers use the engine at its socket, when there is one)
        }
        Tried = true;
        Problem = socket is null
            ? $"the engine ({o.EngineAddress}) is not on this machine: its machine needs the same rules (docs/configuration.md)"
            : await TeamNetworkFirewall.ApplyAsync(o.PrivateNetworks, cancellationToken);
        if (Problem is null)
        {
            ContainersLog.TeamNetworksWalled(logger, o.PrivateNetworks ? "link-local addresses" : "private and link-local addresses");
        }
        else
        {
            ContainersLog.TeamNetworksNotWalled(logger, Problem);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
