using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Covibe.Protocol;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// A running agent's output as the server has seen it: its length (the position clients resume
/// from) and the most recent bytes in a bounded ring of chunks. Watchers that are caught up are
/// <em>live</em>: each new chunk is offered to all of them at once, by the one reader of the
/// agent's log, with no task or wake-up per watcher. Each chunk serializes its hub frame once per
/// audience (owner, teammate), however many watchers there are. A watcher that cannot take a chunk
/// (its connection is behind) leaves the live set and catches up from the ring or the log.
/// </summary>
public sealed class AgentFeed(Agent agent, int ringBytes)
{
    private readonly Queue<Chunk> _chunks = new();
    private readonly Lock _lock = new();
    private ILiveWatcher[] _live = [];
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
        var chunk = new Chunk(this, _position, data.ToArray());
        ILiveWatcher[] live;
        lock (_lock)
        {
            _chunks.Enqueue(chunk);
            _position += data.Length;
            _ringBytesHeld += data.Length;
            while (_ringBytesHeld > ringBytes && _chunks.Count > 1)
            {
                _ringBytesHeld -= _chunks.Dequeue().Data.Length;
            }
            live = _live;
        }
        // Outside the lock, in order: there is one writer per feed (the agent's log reader).
        foreach (var watcher in live)
        {
            watcher.Offer(chunk);
        }
    }

    public void End(string status)
    {
        ILiveWatcher[] live;
        lock (_lock)
        {
            FinalStatus = status;
            live = _live;
            _live = [];
        }
        foreach (var watcher in live)
        {
            watcher.Ended();
        }
    }

    /// <summary>
    /// Makes <paramref name="watcher"/> live if it has everything up to the end (<paramref name="position"/>
    /// is the feed's); false if more output arrived meanwhile (send it first) or the agent has finished.
    /// </summary>
    public bool TryGoLive(ILiveWatcher watcher, long position)
    {
        lock (_lock)
        {
            if (position != _position || FinalStatus is not null)
            {
                return false;
            }
            _live = [.. _live, watcher];
            return true;
        }
    }

    public void Leave(ILiveWatcher watcher)
    {
        lock (_lock)
        {
            var at = Array.IndexOf(_live, watcher);
            if (at >= 0)
            {
                _live = [.. _live.AsSpan(0, at), .. _live.AsSpan(at + 1)];
            }
        }
    }

    /// <summary>How many watchers are live (tests and diagnostics).</summary>
    public int LiveWatchers => Volatile.Read(ref _live).Length;

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
        private byte[]? _ownerCompressed;
        private byte[]? _viewerCompressed;

        public long Start { get; } = start;
        public byte[] Data { get; } = data;
        public long End => Start + Data.Length;

        public byte[] Frame(bool canControl) => canControl
            ? _ownerFrame ??= AgentFeed.Frame(stream.AgentId, stream.OwnerId, Start, Data, canControl: true)
            : _viewerFrame ??= AgentFeed.Frame(stream.AgentId, stream.OwnerId, Start, Data, canControl: false);

        /// <summary>The shared frame for <paramref name="connection"/>: compressed if it negotiated compression.</summary>
        public (byte[] Frame, bool Compressed) FrameFor(Hub.HubConnection connection, bool canControl) =>
            connection.SharesCompression ? (CompressedFrame(canControl), true) : (Frame(canControl), false);

        /// <summary>The frame deflated for connections that negotiated compression: once per audience, shared by all of them.</summary>
        public byte[] CompressedFrame(bool canControl) => canControl
            ? _ownerCompressed ??= Hub.SharedDeflate.Compress(Frame(canControl: true))
            : _viewerCompressed ??= Hub.SharedDeflate.Compress(Frame(canControl: false));
    }
}

/// <summary>A caught-up watcher of a feed; called by the feed's writer, in order, and must not block.</summary>
public interface ILiveWatcher
{
    /// <summary>The next chunk of output, starting where the previous one ended.</summary>
    void Offer(AgentFeed.Chunk chunk);

    /// <summary>The agent has finished: no more chunks.</summary>
    void Ended();
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
