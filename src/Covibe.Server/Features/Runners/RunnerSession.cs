using System.Collections.Concurrent;
using System.Threading.Channels;
using Covibe.Protocol;

namespace Covibe.Server.Features.Runners;

/// <summary>
/// One connection of a runner, whatever carries it (a WebSocket, or a series of long polls): what the server has to say
/// to it, in order, and the requests waiting for its <c>result</c>. Ends when the transport goes, the runner is revoked or
/// another connection of the same runner takes over.
/// </summary>
public sealed class RunnerSession : IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
    private readonly Channel<RunnerMessage> _outbound = Channel.CreateBounded<RunnerMessage>(new BoundedChannelOptions(10_000) { SingleReader = true });
    private readonly ConcurrentDictionary<string, TaskCompletionSource<RunnerMessage>> _pending = new();
    private readonly CancellationTokenSource _closed = new();
    private long _nextId;

    public RunnerSession(string vmId, string teamId, string ownerId, string transport)
    {
        VmId = vmId;
        TeamId = teamId;
        OwnerId = ownerId;
        Transport = transport;
    }

    public string VmId { get; }
    public string TeamId { get; }
    public string OwnerId { get; }
    /// <summary><c>websocket</c> or <c>poll</c>.</summary>
    public string Transport { get; }
    /// <summary>Why it ended (a <see cref="RunnerProtocol"/> close code), once it has.</summary>
    public int? CloseCode { get; private set; }
    public string? CloseReason { get; private set; }
    public bool HelloReceived { get; set; }

    /// <summary>For a long-polling runner: the id its polls send back, and when it last polled.</summary>
    public string? PollId { get; init; }
    public DateTime LastPoll { get; set; }

    /// <summary>Cancelled when the session ends.</summary>
    public CancellationToken Closed => _closed.Token;

    public ChannelReader<RunnerMessage> Outbound => _outbound.Reader;

    /// <summary>Queues a message for the runner; false once the session has ended.</summary>
    public bool Send(RunnerMessage message) => !_closed.IsCancellationRequested && _outbound.Writer.TryWrite(message);

    /// <summary>Sends a request and waits for its <c>result</c> (<see cref="RunnerMessage.Error"/> set if the runner refused it).</summary>
    public async Task<RunnerMessage> RequestAsync(RunnerMessage request, CancellationToken cancellationToken)
    {
        var id = "r" + Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var reply = new TaskCompletionSource<RunnerMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        try
        {
            if (!Send(request with { Id = id }))
            {
                throw new IOException("The runner disconnected.");
            }
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token);
            limit.CancelAfter(RequestTimeout);
            try
            {
                return await reply.Task.WaitAsync(limit.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new IOException(_closed.IsCancellationRequested ? "The runner disconnected before it answered." : $"The runner did not answer within {RequestTimeout.TotalSeconds:0} s.");
            }
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>A <c>result</c> from the runner: completes its request; false for an id nobody waits for.</summary>
    public bool Complete(RunnerMessage result) => result.Id is { } id && _pending.TryRemove(id, out var waiting) && waiting.TrySetResult(result);

    public void Close(int code, string reason)
    {
        if (CloseCode is null)
        {
            (CloseCode, CloseReason) = (code, reason);
        }
        _outbound.Writer.TryComplete();
        _closed.Cancel();
    }

    public void Dispose() => _closed.Dispose();
}
