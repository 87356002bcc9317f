using Covibe.Execution;
using Covibe.Server.Features.Machines;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Where a node reads output its memory does not hold: the agent's log where this node can read it (on this machine, or
/// on a VM over SSH), else the cluster's buffer (<see cref="IAgentOutputStore"/>). When neither has the bytes, the answer
/// says so (they are on another machine's disk only), so that readers can tell their clients instead of waiting.
/// </summary>
public sealed class AgentOutputReader(ExecutionBackends backends, IAgentOutputStore store)
{
    /// <summary>
    /// Reads output from <paramref name="position"/> (before <paramref name="end"/>) into <paramref name="buffer"/>.
    /// <c>Start</c> is past <paramref name="position"/> when the bytes between can be read nowhere; <c>Count</c> is 0 when
    /// nothing from there to <paramref name="end"/> can.
    /// </summary>
    public async Task<(long Start, int Count)> ReadAsync(string agentId, string backend, AgentProcess? process, long position, long end,
        Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var wanted = (int)Math.Min(buffer.Length, end - position);
        if (wanted <= 0)
        {
            return (position, 0);
        }
        if (process is not null)
        {
            var read = await backends.Get(backend).ReadOutputAsync(process, position, buffer[..wanted], cancellationToken);
            if (read > 0)
            {
                return (position, read);
            }
        }
        if (await store.ReadAsync(agentId, position, wanted, cancellationToken) is { } kept && kept.Start < end)
        {
            var count = (int)Math.Min(kept.Data.Length, end - kept.Start);
            kept.Data.AsSpan(0, count).CopyTo(buffer.Span);
            return (kept.Start, count);
        }
        return (position, 0);
    }
}
