using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// An agent's output read from a position for REST (<c>GET /api/agent/{id}/output</c> and <c>/events</c>): from the feed's
/// ring, then the log (or Redis, <see cref="AgentOutputReader"/>) for what memory no longer holds; what can be read
/// nowhere here is skipped, and the page says where it starts. <see cref="OutputPage.EndOfOutput"/>: the agent has
/// finished and the page reaches the end of its output.
/// </summary>
public sealed class AgentOutputPages(AgentService agents, AgentFeeds streams, AgentOutputReader reader)
{
    public async Task<OutputPage> ReadAsync(Caller caller, string id, long? from, int limit, CancellationToken cancellationToken)
    {
        var v = new Validator();
        LogPages.CheckFrom(v, from);
        if (limit is < 1 or > AgentsApi.MaxOutputPage)
        {
            v.Fail("limit", $"'limit' must be between 1 and {AgentsApi.MaxOutputPage}.");
        }
        if (!v.IsValid)
        {
            throw RequestRefusedException.Invalid(v);
        }
        var agent = await agents.FindForReadingAsync(caller, id, cancellationToken)
            ?? throw RequestRefusedException.NotFound("Agent", $"Your team has no agent '{id}'. List them with GET /api/agent/list.");
        var final = AgentStatuses.IsFinal(agent.Status);
        var feed = streams.Get(id);
        var end = feed?.Position ?? agent.OutputBytes;
        var start = Math.Min(from ?? 0, end);
        var data = new byte[(int)Math.Min(limit, end - start)];
        var read = 0;
        while (read < data.Length)
        {
            var position = start + read;
            if (feed?.ChunkAt(position) is { } chunk)
            {
                var part = chunk.Data.AsSpan((int)(position - chunk.Start));
                part = part[..Math.Min(part.Length, data.Length - read)];
                part.CopyTo(data.AsSpan(read));
                read += part.Length;
                continue;
            }
            // Older than memory holds: the log, or Redis; what can be read nowhere here is skipped (Covibe-Output-Start says so).
            var before = feed is null ? end : Math.Min(end, feed.RingStart);
            if (before <= position)
            {
                break;
            }
            var (at, n) = await reader.ReadAsync(id, agent.Backend, agent.Process, position, before, data.AsMemory(read, (int)Math.Min(data.Length - read, before - position)), cancellationToken);
            if (at > position || n == 0)
            {
                if (read > 0)
                {
                    break; // what was contiguous; the next page starts past the gap
                }
                var skipped = data;
                start = n == 0 ? before : at;
                data = new byte[(int)Math.Min(limit, end - start)];
                n = Math.Min(n, data.Length);
                skipped.AsSpan(0, n).CopyTo(data);
                if (n == 0)
                {
                    continue;
                }
            }
            read += n;
        }
        var endOfOutput = final && start + read >= end;
        return new OutputPage(new LogPage(start, data[..read], endOfOutput), endOfOutput);
    }
}

public sealed record OutputPage(LogPage Page, bool EndOfOutput);
