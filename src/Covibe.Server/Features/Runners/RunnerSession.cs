using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Covibe.Protocol;
using Covibe.Web;

namespace Covibe.Server.Features.Runners;

/// <summary>
/// One connection of a runner, whatever carries it (a WebSocket, or a series of long polls): what the server has to say
/// to it, in order, and the requests waiting for its <c>result</c>. Ends when the transport goes, the runner is revoked or
/// another connection of the same runner takes over. Over a WebSocket, messages go through its <see cref="Outbox"/>
/// (the send path every WebSocket of Covibe shares); over polls, they wait in a mailbox the next poll empties. Either way
/// a runner that leaves <see cref="QueueCapacity"/> messages untaken is too slow and its connection ends (it reconnects,
/// says hello and is told again where to resume): nothing is dropped silently.
/// </summary>
public sealed class RunnerSession : IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
    /// <summary>How many messages may wait for the runner to take them.</summary>
    public const int QueueCapacity = 10_000;
    private readonly Outbox? _socket;
    private readonly Channel<RunnerMessage> _mailbox = Channel.CreateBounded<RunnerMessage>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true });
    private readonly ConcurrentDictionary<string, TaskCompletionSource<RunnerMessage>> _pending = new();
    private readonly CancellationTokenSource _closed = new();
    private long _nextId;

    private RunnerSession(string vmId, string teamId, string ownerId, string transport, Outbox? socket)
    {
        VmId = vmId;
        TeamId = teamId;
        OwnerId = ownerId;
        Transport = transport;
        _socket = socket;
    }

    /// <summary>A session carried by a WebSocket: what is sent goes out through <paramref name="outbox"/>, and <see cref="Close"/> sends the close frame.</summary>
    public static RunnerSession OverWebSocket(string vmId, string teamId, string ownerId, Outbox outbox) => new(vmId, teamId, ownerId, "websocket", outbox);

    /// <summary>A session carried by long polls (<paramref name="pollId"/>: what they send back): what is sent waits in <see cref="Outbound"/>.</summary>
    public static RunnerSession OverPolls(string vmId, string teamId, string ownerId, string pollId, DateTime now) =>
        new(vmId, teamId, ownerId, "poll", null) { PollId = pollId, LastPoll = now };

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

    /// <summary>What waits for the next poll (empty over a WebSocket).</summary>
    public ChannelReader<RunnerMessage> Outbound => _mailbox.Reader;

    /// <summary>Queues a message for the runner; false once the session has ended, or if this ended it (the runner is too slow).</summary>
    public bool Send(RunnerMessage message)
    {
        if (_closed.IsCancellationRequested)
        {
            return false;
        }
        var queued = _socket is { } socket
            ? !socket.Closing && socket.TrySend(JsonSerializer.SerializeToUtf8Bytes(message, CovibeJsonContext.Default.RunnerMessage))
            : _mailbox.Writer.TryWrite(message);
        if (!queued)
        {
            Close((int)WebSocketCloseStatus.PolicyViolation, $"The runner left {QueueCapacity} messages untaken.");
        }
        return queued;
    }

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
        _mailbox.Writer.TryComplete();
        _socket?.Close((WebSocketCloseStatus)CloseCode!.Value, CloseReason!);
        _closed.Cancel();
    }

    public void Dispose() => _closed.Dispose();
}
