using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Covibe.Protocol;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// A running agent's output as the server has seen it: its length (the position clients resume
/// from) and the most recent bytes in a bounded ring of chunks for live fan-out. Each chunk
/// serializes its hub frame once per audience (owner, teammate), however many subscribers there are.
/// </summary>
public sealed class AgentFeed(Agent agent, int ringBytes)
{
    private readonly Queue<Chunk> _chunks = new();
    private readonly Lock _lock = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _ringBytesHeld;
    private long _position;

    public string AgentId { get; } = agent.Id;
    public string TeamId { get; } = agent.TeamId;
    public string OwnerId { get; } = agent.UserId;

    /// <summary>Where the agent's log is, for readers that fall behind the ring.</summary>
    public string Backend { get; } = agent.Backend;
    public Covibe.Execution.AgentProcess? Process { get; } = agent.Process;

    public long Position
    {
        get
        {
            lock (_lock)
            {
                return _position;
            }
        }
    }

    /// <summary>Set when the agent has finished and every byte of its output is in <see cref="Position"/>.</summary>
    public string? FinalStatus { get; private set; }

    public void Append(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }
        TaskCompletionSource changed;
        lock (_lock)
        {
            _chunks.Enqueue(new Chunk(this, _position, data.ToArray()));
            _position += data.Length;
            _ringBytesHeld += data.Length;
            while (_ringBytesHeld > ringBytes && _chunks.Count > 1)
            {
                _ringBytesHeld -= _chunks.Dequeue().Data.Length;
            }
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    public void End(string status)
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            FinalStatus = status;
            changed = _changed;
        }
        changed.TrySetResult();
    }

    /// <summary>The chunk holding <paramref name="position"/>, or null if it is older than the ring (read the log) or not written yet.</summary>
    public Chunk? ChunkAt(long position)
    {
        lock (_lock)
        {
            foreach (var chunk in _chunks)
            {
                if (position >= chunk.Start && position < chunk.End)
                {
                    return chunk;
                }
            }
            return null;
        }
    }

    /// <summary>The oldest position still in memory.</summary>
    public long RingStart
    {
        get
        {
            lock (_lock)
            {
                return _chunks.TryPeek(out var first) ? first.Start : _position;
            }
        }
    }

    /// <summary>Completes when output beyond <paramref name="position"/> exists or the agent has finished.</summary>
    public Task WaitAsync(long position, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_position > position || FinalStatus is not null)
            {
                return Task.CompletedTask;
            }
            return _changed.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Builds the hub frame for bytes of an agent's output starting at <paramref name="position"/>.</summary>
    public static byte[] Frame(string agentId, string ownerId, long position, ReadOnlySpan<byte> data, bool canControl)
    {
        var valid = Utf8.IsValid(data);
        var message = new AgentOutputMessage(agentId, ownerId,
            valid ? Encoding.UTF8.GetString(data) : Convert.ToBase64String(data),
            canControl, position, position + data.Length, valid ? null : "base64");
        return Hub.HubJson.Serialize(message);
    }

    public sealed class Chunk(AgentFeed stream, long start, byte[] data)
    {
        private byte[]? _ownerFrame;
        private byte[]? _viewerFrame;

        public long Start { get; } = start;
        public byte[] Data { get; } = data;
        public long End => Start + Data.Length;

        public byte[] Frame(bool canControl) => canControl
            ? _ownerFrame ??= AgentFeed.Frame(stream.AgentId, stream.OwnerId, Start, Data, canControl: true)
            : _viewerFrame ??= AgentFeed.Frame(stream.AgentId, stream.OwnerId, Start, Data, canControl: false);
    }
}

/// <summary>The streams of agents this server is watching, and news of new ones for hub followers.</summary>
public sealed class AgentFeeds
{
    private readonly ConcurrentDictionary<string, AgentFeed> _streams = new();

    public event Action<AgentFeed>? Started;

    public AgentFeed? Get(string agentId) => _streams.GetValueOrDefault(agentId);

    public IEnumerable<AgentFeed> OfTeam(string teamId) => _streams.Values.Where(s => s.TeamId == teamId);

    /// <summary>The agent's feed, opened (and announced to followers) if it is not open yet.</summary>
    internal AgentFeed Open(Agent agent, int ringBytes)
    {
        var created = false;
        var feed = _streams.GetOrAdd(agent.Id, _ =>
        {
            created = true;
            return new AgentFeed(agent, ringBytes);
        });
        if (created)
        {
            Started?.Invoke(feed);
        }
        return feed;
    }

    internal void Close(string agentId) => _streams.TryRemove(agentId, out _);
}

/// <summary>Where a UTF-8 sequence may be cut: never inside a character.</summary>
public static class Utf8Boundary
{
    /// <summary>The length of <paramref name="data"/> without a trailing, incomplete UTF-8 sequence.</summary>
    public static int CompleteLength(ReadOnlySpan<byte> data)
    {
        // Look back at most 3 bytes for the lead byte of the last character.
        for (var back = 1; back <= Math.Min(3, data.Length); back++)
        {
            var b = data[^back];
            if ((b & 0b1100_0000) == 0b1000_0000)
            {
                continue; // continuation byte: keep looking for the lead
            }
            var needed = (b & 0b1110_0000) == 0b1100_0000 ? 2
                : (b & 0b1111_0000) == 0b1110_0000 ? 3
                : (b & 0b1111_1000) == 0b1111_0000 ? 4
                : 1;
            return needed > back ? data.Length - back : data.Length;
        }
        return data.Length;
    }
}
