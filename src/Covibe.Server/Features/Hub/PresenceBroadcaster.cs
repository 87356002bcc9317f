using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// Sends <c>team_presence</c>: the changes of a short window are taken together, each team's
/// presence is worked out once, and it goes out only if a person's state changed.
/// </summary>
public sealed class PresenceBroadcaster(TeamHub hub, IOptions<HubOptions> options, TimeProvider time, ILogger<PresenceBroadcaster> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var changes = hub.PresenceChanges;
        try
        {
            while (await changes.WaitToReadAsync(stoppingToken))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(options.Value.PresenceDebounceMilliseconds), time, stoppingToken);
                var teams = new HashSet<string>(StringComparer.Ordinal);
                while (changes.TryRead(out var team))
                {
                    teams.Add(team);
                }
                foreach (var team in teams)
                {
                    try
                    {
                        await hub.PublishPresenceAsync(team, stoppingToken);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        HubLog.PresenceFailed(logger, team, e);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }
}
