using Covibe.Execution;
using Docker.DotNet;
using Microsoft.Extensions.Options;
using Covibe.Execution.Containers;

namespace Covibe.Server.Features.Containers;

/// <summary>
/// The container engine at <c>DOCKER_HOST</c>: its client, and whether it can take agents now (asked at most every few
/// seconds, and marked down at once when a call finds it gone: <see cref="MarkDown"/>).
/// </summary>
public sealed class ContainerEngine(IOptions<ContainersOptions> options, ContainerUser user, ContainerJournal journal, TimeProvider time, ILogger<ContainerEngine> logger)
    : IDisposable
{
    private static readonly TimeSpan RememberDown = TimeSpan.FromSeconds(2);
    private readonly Lock _lock = new();
    private DockerClient? _client;
    private ManagedContainers? _containers;
    private volatile EngineCheck _last = new(DateTimeOffset.MinValue, null);
    private volatile bool _answered;

    public DockerClient Client
    {
        get
        {
            lock (_lock)
            {
                return _client ??= new DockerClientBuilder().WithEndpoint(new Uri(options.Value.EngineAddress)).WithTimeout(TimeSpan.FromSeconds(30)).Build();
            }
        }
    }

    /// <summary>Covibe's containers in the engine: team workspace containers, health checks, listing, removal.</summary>
    public ManagedContainers Containers
    {
        get
        {
            lock (_lock)
            {
                var o = options.Value;
                return _containers ??= new ManagedContainers(Client, new ContainerSettings(o.Image, o.Network,
                    new ContainerLimits(ContainersOptions.Bytes(o.AgentMemory), ContainersOptions.Bytes(o.AgentMemoryReservation), o.AgentCpus, o.AgentCpuReservation), (user.Uid, user.Gid),
                    new ContainerLimits(ContainersOptions.Bytes(o.PreviewMemory), ContainersOptions.Bytes(o.PreviewMemoryReservation), o.PreviewCpus, o.PreviewCpuReservation)),
                    new ContainerEvents(
                        (made, ct) => journal.RecordAsync(made.TeamId, made.Type, made.Name, made.Metadata, ct),
                        (name, ct) => journal.SetStatusAsync(name, ContainerStatuses.Removed, ct),
                        MarkDown));
            }
        }
    }

    /// <summary>Null when the engine answers and has the image; else what is wrong, in words for the operator.</summary>
    public async Task<string?> ProblemAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var last = _last;
        var remember = TimeSpan.FromSeconds(options.Value.EngineCheckSeconds);
        if (now - last.At < (last.Problem is not null && RememberDown < remember ? RememberDown : remember))
        {
            return last.Problem;
        }
        string? problem = null;
        var unanswered = false;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            await Client.System.PingAsync(timeout.Token);
            try
            {
                await Client.Images.InspectImageAsync(options.Value.Image, timeout.Token);
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                problem = new ContainerImageMissingException(options.Value.Image).Message;
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException or OperationCanceledException or TimeoutException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            problem = DoesNotAnswer(e);
            unanswered = true;
        }
        Record(new EngineCheck(now, problem, unanswered));
        return problem;
    }

    /// <summary>
    /// Whether the engine answered this node before and does not answer now (stopped, or its socket gone): work for it
    /// waits. An engine that never answered here is not there (never set up, or not started yet): work for it fails.
    /// </summary>
    public async Task<bool> DownAsync(CancellationToken cancellationToken)
    {
        await ProblemAsync(cancellationToken);
        return _last.Unanswered && _answered;
    }

    /// <summary>The engine as last seen, without asking it: <c>ok</c>, <c>unavailable</c>, or null before anyone asked.</summary>
    public string? State => _last is { Known: true } last ? last.Problem is null ? "ok" : "unavailable" : null;

    /// <summary>
    /// A call found the engine gone (<paramref name="failure"/>): it is down from now on, without waiting for the next
    /// check, so the next placement takes the fallback; it is asked again a few seconds later, and is up once it answers.
    /// </summary>
    public void MarkDown(Exception failure) => Record(new EngineCheck(time.GetUtcNow(), DoesNotAnswer(failure), Unanswered: true));

    private string DoesNotAnswer(Exception e) => $"The container engine at {options.Value.EngineAddress} does not answer ({e.GetBaseException().Message}).";

    private void Record(EngineCheck check)
    {
        _answered |= !check.Unanswered;
        var before = _last;
        _last = check;
        if (check.Problem is not null && before.Problem is null && (_answered || !check.Unanswered))
        {
            // Said when an engine that answered stops, or one that answers lacks the image; an engine never reached
            // here is not "down" (a server without one says so in its banner and on /health when containers are on).
            ContainersLog.EngineDown(logger, check.Problem);
        }
        else if (check.Problem is null && before is { Problem: not null, Known: true })
        {
            ContainersLog.EngineBack(logger);
        }
    }

    public void Dispose() => _client?.Dispose();

    private sealed record EngineCheck(DateTimeOffset At, string? Problem, bool Unanswered = false)
    {
        /// <summary>Whether anyone has asked the engine yet.</summary>
        public bool Known => At != DateTimeOffset.MinValue;
    }
}

/// <summary>Who the processes in Covibe's containers run as: this server's user, or the sandbox's when the server is root (the machines' setting).</summary>
public sealed record ContainerUser(uint Uid, uint Gid);
