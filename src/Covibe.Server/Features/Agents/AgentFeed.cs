using System.Collections.Concurrent;
using Covibe.Protocol;
using Covibe.Web;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// A running agent's output as the server has seen it: its length (the position clients resume
/// from) and the most recent bytes in a bounded ring of chunks (an <see cref="OutputRing"/>, the buffer behind a
/// terminal's scrollback too). Watchers that are caught up are
/// <em>live</em>: each new chunk is offered to all of them at once, by the one reader of the
/// agent's log, with no task or wake-up per watcher. Each chunk keeps what watchers render of it
/// (the hub's frame per audience), so that is made once however many watchers there are. A watcher that cannot take a chunk
/// (its connection is behind) leaves the live set and catches up from the ring or the log.
/// </summary>
public sealed class AgentFeed(string agentId, string teamId, string ownerId, string backend, Covibe.Execution.AgentProcess? process, int ringBytes, long start = 0, WatcherCount? node = null)
{
    // Every watcher of the node's feeds (this one's among them): the frame budget is the node's.
    private readonly WatcherCount _node = node ?? new WatcherCount();
    // The output's recent chunks and its length (under _lock).
    private readonly OutputRing _ring = new(ringBytes, start);
    private readonly Lock _lock = new();
    private readonly Lock _writing = new();
    private ILiveWatcher[] _live = [];

    public AgentFeed(Agent agent, int ringBytes, WatcherCount? node = null) : this(agent.Id, agent.TeamId, agent.UserId, agent.Backend, agent.Process, ringBytes, 0, node)
    {
    }

    public string AgentId { get; } = agentId;
    public string TeamId { get; } = teamId;
    public string OwnerId { get; } = ownerId;

    private string[] _controllers = [ownerId];

    /// <summary>Who controls the agent (its owner, and whom it was handed to; <c>*</c>: the team), kept current by <see cref="AgentControl"/>.</summary>
    public string[] Controllers
    {
        get => Volatile.Read(ref _controllers);
        set => Volatile.Write(ref _controllers, value);
    }

    /// <summary>Where the agent's log is, for readers that fall behind the ring (<see cref="Process"/> null: not known yet, ask the database).</summary>
    public string Backend { get; } = backend;
    public Covibe.Execution.AgentProcess? Process { get; } = process;

    public long Position
    {
        get
        {
            lock (_lock)
            {
                return _ring.End;
            }
        }
    }

    /// <summary>Blocks of the log older than the ring, shared by the watchers catching up through them.</summary>
    public LogBlocks Blocks { get; } = new();

    /// <summary>Set when the agent has finished and every byte of its output is in <see cref="Position"/>.</summary>
    public string? FinalStatus { get; private set; }

    /// <summary>Appends at the end (the one reader of the agent's log on this node).</summary>
    public void Append(ReadOnlySpan<byte> data) => AppendAt(Position, data);

    /// <summary>
    /// Output that starts at <paramref name="start"/> in the agent's log: what this feed has already is skipped (a node
    /// that takes an agent over reads its log again from the start; another node's copy may arrive twice), so every
    /// byte is offered once, in order. A start past the end (output this node did not see, e.g. while Redis was away)
    /// drops the ring: readers take the missing part from the log. Returns the chunk added, or null if nothing was new.
    /// </summary>
    public OutputChunk? AppendAt(long start, ReadOnlySpan<byte> data)
    {
        lock (_writing)
        {
            OutputChunk? chunk;
            ILiveWatcher[] live;
            lock (_lock)
            {
                chunk = FinalStatus is null ? _ring.Append(start, data) : null;
                if (chunk is null)
                {
                    return null;
                }
                live = _live;
            }
            // Outside the state lock, in order (the writing lock keeps two writers' chunks from crossing).
            foreach (var watcher in live)
            {
                watcher.Offer(chunk);
            }
            return chunk;
        }
    }

    /// <summary>
    /// The agent has finished with <paramref name="length"/> bytes of output (null: what this feed has). If this feed
    /// missed the last of it, the ring is dropped and readers take the rest from the log.
    /// </summary>
    public void End(string status, long? length = null)
    {
        ILiveWatcher[] live;
        lock (_writing)
        {
            lock (_lock)
            {
                if (FinalStatus is not null)
                {
                    return;
                }
                if (length > _ring.End)
                {
                    _ring.SkipTo(length.Value);
                }
                FinalStatus = status;
                live = _live;
                _live = [];
            }
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
            if (position != _ring.End || FinalStatus is not null)
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

    private int _watchers;

    /// <summary>
    /// How many watchers this feed has, live or catching up: what the gathering window is sized on, so that watchers
    /// falling behind do not shrink the chunks they catch up through (more, smaller frames would put them further behind).
    /// </summary>
    public int Watchers => Volatile.Read(ref _watchers);

    /// <summary>
    /// How long the feed's reader lets output gather into one chunk: <paramref name="batch"/>, or longer with many
    /// watchers (live or catching up) of any of the node's agents, so that all of them together make at most
    /// <paramref name="maxFramesPerSecond"/> frames (ten agents with 100 watchers each gather as one with 1,000 does).
    /// </summary>
    public TimeSpan GatheringWindow(TimeSpan batch, int maxFramesPerSecond) =>
        TimeSpan.FromTicks(Math.Max(batch.Ticks, TimeSpan.TicksPerSecond * _node.Value / maxFramesPerSecond));

    /// <summary>A watcher starts following this feed until the returned handle is disposed.</summary>
    public IDisposable Watch()
    {
        Interlocked.Increment(ref _watchers);
        _node.Add(1);
        return new Watching(this);
    }

    private sealed class Watching(AgentFeed feed) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref feed._watchers);
                feed._node.Add(-1);
            }
        }
    }

    /// <summary>The chunk holding <paramref name="position"/>, or null if it is older than the ring (read the log) or not written yet.</summary>
    public OutputChunk? ChunkAt(long position)
    {
        lock (_lock)
        {
            return _ring.ChunkAt(position);
        }
    }

    /// <summary>The oldest position still in memory.</summary>
    public long RingStart
    {
        get
        {
            lock (_lock)
            {
                return _ring.Start;
            }
        }
    }
}

/// <summary>A caught-up watcher of a feed; called by the feed's writer, in order, and must not block.</summary>
public interface ILiveWatcher
{
    /// <summary>The next chunk of output, starting where the previous one ended.</summary>
    void Offer(OutputChunk chunk);

    /// <summary>The agent has finished: no more chunks.</summary>
    void Ended();
}

/// <summary>The streams of agents this server is watching, and news of new ones for hub followers.</summary>
public sealed class AgentFeeds
{
    private readonly ConcurrentDictionary<string, AgentFeed> _streams = new();

    /// <summary>Watchers of every feed open here, live or catching up.</summary>
    public WatcherCount Watchers { get; } = new();

    public event Action<AgentFeed>? Started;

    public AgentFeed? Get(string agentId) => _streams.GetValueOrDefault(agentId);

    public IEnumerable<AgentFeed> OfTeam(string teamId) => _streams.Values.Where(s => s.TeamId == teamId);

    /// <summary>The agent's feed, opened (and announced to followers) if it is not open yet.</summary>
    internal AgentFeed Open(Agent agent, int ringBytes) => Open(agent.Id, () => new AgentFeed(agent, ringBytes, Watchers));

    /// <summary>
    /// The feed of an agent another node follows, opened at the first of its output this node hears of
    /// (<paramref name="start"/>); output before that is read from the log.
    /// </summary>
    internal AgentFeed OpenElsewhere(string agentId, string teamId, string ownerId, string backend, int ringBytes, long start) =>
        Open(agentId, () => new AgentFeed(agentId, teamId, ownerId, backend, null, ringBytes, start, Watchers));

    private AgentFeed Open(string agentId, Func<AgentFeed> create)
    {
        var created = false;
        var feed = _streams.GetOrAdd(agentId, _ =>
        {
            created = true;
            return create();
        });
        if (created)
        {
            Started?.Invoke(feed);
        }
        return feed;
    }

    /// <summary>Every feed open on this node.</summary>
    public ICollection<AgentFeed> All => _streams.Values;

    internal void Close(string agentId) => _streams.TryRemove(agentId, out _);

    /// <summary>Closes <paramref name="feed"/> only if it is still the one open for its agent.</summary>
    internal void Close(AgentFeed feed) => _streams.TryRemove(new KeyValuePair<string, AgentFeed>(feed.AgentId, feed));

    // The log blocks of agents this node has no feed of (finished, or followed by another node), for the watchers that
    // replay them: a crowd replaying a finished agent shares each block as a feed's watchers do (1,000 watchers still
    // catching up on an agent that had just ended each read its log on their own, a frame each per 64 KiB, and fell
    // seconds behind the next agent). Kept for the last few agents replayed.
    private readonly KeptLast<string, LogBlocks> _replays = new(8);
    private readonly Lock _replayLock = new();

    /// <summary>The shared blocks of the log of <paramref name="agentId"/>, which this node has no feed of.</summary>
    public LogBlocks ReplayOf(string agentId)
    {
        lock (_replayLock)
        {
            if (!_replays.TryGetValue(agentId, out var blocks))
            {
                blocks = new LogBlocks();
                _replays.Add(agentId, blocks);
            }
            return blocks;
        }
    }
}

/// <summary>A count of watchers shared by the feeds of a node (<see cref="AgentFeeds.Watchers"/>).</summary>
public sealed class WatcherCount
{
    private int _value;

    public int Value => Volatile.Read(ref _value);

    internal void Add(int change) => Interlocked.Add(ref _value, change);
}
