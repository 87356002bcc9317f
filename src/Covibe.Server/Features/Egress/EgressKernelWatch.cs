using Covibe.Execution.Egress;

namespace Covibe.Server.Features.Egress;

/// <summary>
/// Tells teams the connections the firewall refused them (direct ones, not through the proxy): the kernel logs each
/// with the team's key (<see cref="EgressRules"/>), from a sandbox's own network namespace too once
/// <c>net.netfilter.nf_log_all_netns</c> is 1, which this sets (as root).
/// </summary>
public sealed class EgressKernelWatch(EgressPolicies policies, EgressEvents events, ILogger<EgressKernelWatch> logger) : IHostedService
{
    private const string AllNamespaces = "/proc/sys/net/netfilter/nf_log_all_netns";
    private readonly Dictionary<string, string> _teams = [];
    private long _since;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Execution.UntrustedFiles.RunningAsRoot)
        {
            return Task.CompletedTask; // no firewall of ours here either
        }
        try
        {
            if (File.Exists(AllNamespaces) && File.ReadAllText(AllNamespaces).Trim() != "1")
            {
                File.WriteAllText(AllNamespaces, "1");
            }
        }
        catch (IOException e)
        {
            EgressLog.KernelLogUnavailable(logger, $"{AllNamespaces} cannot be set ({e.Message}), so refusals in sandboxes are not logged");
        }
        _since = KernelLog.Now();
        if (KernelLog.Subscribe(OnLine) is { } why)
        {
            EgressLog.KernelLogUnavailable(logger, why);
        }
        return Task.CompletedTask;
    }

    private void OnLine(KernelLine line)
    {
        if (line.Microseconds < _since || RefusedConnection.Parse(line.Message) is not { } refused)
        {
            return;
        }
        _ = TellAsync(refused);
    }

    private async Task TellAsync(RefusedConnection refused)
    {
        try
        {
            await TellTeamAsync(refused);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or System.Data.Common.DbException)
        {
            // The server is stopping.
        }
    }

    private async Task TellTeamAsync(RefusedConnection refused)
    {
        string? teamId;
        lock (_teams)
        {
            _teams.TryGetValue(refused.Key, out teamId);
        }
        teamId ??= await policies.TeamOfKeyAsync(refused.Key, CancellationToken.None);
        if (teamId is null)
        {
            return; // another server's team on this machine
        }
        lock (_teams)
        {
            _teams[refused.Key] = teamId;
        }
        events.Blocked(teamId, refused.Destination, refused.Port, "direct");
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        KernelLog.Unsubscribe(OnLine);
        return Task.CompletedTask;
    }
}
