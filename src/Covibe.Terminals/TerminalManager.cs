using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Covibe.Execution;
using Covibe.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Terminals;

/// <summary>
/// Every terminal session of this process: creation within the limits, lookup, and a janitor
/// that hangs up sessions nobody has watched for SESSION_TIMEOUT and ends the leftovers of
/// shells that have exited. Stopping the host hangs up every session (no orphaned shells).
/// </summary>
public sealed partial class TerminalManager(
    IOptions<TerminalOptions> options,
    TerminalLaunch launch,
    ITerminalLauncher launcher,
    TimeProvider time,
    System.Diagnostics.Metrics.IMeterFactory meters,
    ILogger<TerminalManager> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<string, TerminalSession> _sessions = new(StringComparer.Ordinal);
    private TerminalMetrics? _metrics;

    private TerminalMetrics Metrics => _metrics ??= new TerminalMetrics(meters, () => _sessions.Count);
    private readonly Lock _createLock = new();
    private readonly TerminalOptions _options = options.Value;

    public DateTimeOffset StartedAt { get; } = time.GetUtcNow();

    public int Count => _sessions.Count;

    public TerminalLaunch Launch => launch;

    public IReadOnlyCollection<TerminalSession> Sessions => [.. _sessions.Values.OrderBy(s => s.CreatedAt)];

    /// <summary>A session was created, shared or unshared, or ended: lists shown to its owner and team are stale.</summary>
    public event Action<TerminalSession>? SessionsChanged;

    internal void Changed(TerminalSession session) => SessionsChanged?.Invoke(session);

    /// <summary>Logins signed out or removed: connections authenticated by them close at once (their sessions live on).</summary>
    public event Action<IReadOnlyCollection<string>>? LoginsRevoked;

    public void RevokeLogins(IReadOnlyCollection<string> logins) => LoginsRevoked?.Invoke(logins);

    public TerminalSession? Find(string? id) => id is not null && _sessions.TryGetValue(id, out var session) ? session : null;

    /// <summary>Starts a shell for <paramref name="owner"/>. Throws <see cref="TerminalException"/> for anything the client can fix.</summary>
    public async Task<TerminalSession> CreateAsync(TerminalUser owner, string? requestedId, TerminalConfig? config, CancellationToken cancellationToken)
    {
        try
        {
            var session = await CreateCoreAsync(owner, requestedId, config, cancellationToken);
            Metrics.Started("ok");
            return session;
        }
        catch (TerminalException e)
        {
            Metrics.Started(e.Code);
            throw;
        }
    }

    private async Task<TerminalSession> CreateCoreAsync(TerminalUser owner, string? requestedId, TerminalConfig? config, CancellationToken cancellationToken)
    {
        var id = requestedId ?? Guid.NewGuid().ToString();
        if (!SessionId().IsMatch(id))
        {
            throw new TerminalException(TerminalErrorCodes.InvalidMessage, "A session id is 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit.");
        }
        var start = await launcher.StartInfoAsync(owner, id, config, cancellationToken);
        var info = start.Info;
        var opened = start.Open is { } open ? await OpenAsync(open, id, cancellationToken) : null;
        try
        {
            lock (_createLock)
            {
                if (_sessions.ContainsKey(id))
                {
                    throw new TerminalException(TerminalErrorCodes.SessionExists, $"A session '{id}' exists already. Attach to it, or create one with another id.");
                }
                if (_sessions.Count >= _options.MaxSessions)
                {
                    throw new TerminalException(TerminalErrorCodes.SessionLimit, $"This server has its maximum of {_options.MaxSessions} sessions open. Close one first.");
                }
                if (_sessions.Values.Count(s => s.Owner.Id == owner.Id) >= _options.MaxSessionsPerUser)
                {
                    throw new TerminalException(TerminalErrorCodes.SessionLimit, $"You have {_options.MaxSessionsPerUser} sessions open, the most one user may. Close one first.");
                }
                IPty pty;
                try
                {
                    pty = opened ?? LocalPty.Start(info);
                    opened = null;
                }
                catch (IOException e)
                {
                    TerminalLog.StartFailed(logger, id, e);
                    throw new TerminalException(TerminalErrorCodes.CommandFailed, "The shell could not be started on this machine. The server log says why.");
                }
                var session = new TerminalSession(id, owner, start, pty, _options, time);
                _sessions[id] = session;
                session.Start(Ended);
                var shell = info.Environment.TryGetValue("SHELL", out var named) ? named : info.Program;
                TerminalLog.Opened(logger, id, owner.Id, pty.ProcessId, shell);
                Changed(session);
                return session;
            }
        }
        finally
        {
            // Refused after all (a limit, a duplicate id): the terminal opened elsewhere goes.
            opened?.Dispose();
        }
    }

    private async Task<IPty> OpenAsync(Func<CancellationToken, Task<IPty>> open, string id, CancellationToken cancellationToken)
    {
        try
        {
            return await open(cancellationToken);
        }
        catch (Exception e) when (e is IOException or HttpRequestException or InvalidOperationException)
        {
            TerminalLog.StartFailed(logger, id, e);
            throw new TerminalException(TerminalErrorCodes.CommandFailed, $"The shell could not be started: {e.Message}");
        }
    }

    private void Ended(TerminalSession session)
    {
        _sessions.TryRemove(new KeyValuePair<string, TerminalSession>(session.Id, session));
        TerminalLog.Ended(logger, session.Id, session.ExitCode ?? -1);
        Metrics.Ended(time.GetUtcNow().UtcDateTime - session.CreatedAt);
        Changed(session);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = Metrics; // sessions open are counted from the start, none yet
        var timeout = TimeSpan.FromSeconds(_options.SessionTimeoutSeconds);
        var period = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 250, 30_000));
        using var timer = new PeriodicTimer(period, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                foreach (var session in _sessions.Values)
                {
                    if (session.IsIdle(timeout))
                    {
                        TerminalLog.IdleTimeout(logger, session.Id, _options.SessionTimeoutSeconds);
                        await session.CloseAsync(stoppingToken);
                    }
                    else if (session.ShellGoneButTerminalHeld())
                    {
                        await session.CloseAsync(stoppingToken);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        var sessions = _sessions.Values.ToList();
        await Task.WhenAll(sessions.Select(s => s.CloseAsync(cancellationToken)));
        await Task.WhenAll(sessions.Select(s => s.Finished));
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
    private static partial Regex SessionId();
}
