using System.Buffers.Binary;
using Covibe.Server.Features.Cluster;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// An agent's output as the node that follows it tells the others: <see cref="Data"/> starts at <see cref="Position"/> in
/// the agent's log. With <see cref="FinalStatus"/>, the agent has finished and its output is <see cref="Position"/> long.
/// </summary>
public sealed record RelayedOutput(string Node, string AgentId, string TeamId, string OwnerId, string Backend, long Position, byte[] Data, string? FinalStatus = null);

/// <summary>The bytes of a <see cref="RelayedOutput"/> on Redis: a version byte, length-prefixed text fields, the position (64-bit big-endian), then the data.</summary>
public static class RelayedOutputCodec
{
    private const byte Version = 1;

    public static byte[] Encode(RelayedOutput o)
    {
        using var buffer = new MemoryStream(o.Data.Length + 128);
        buffer.WriteByte(Version);
        ClusterFields.Write(buffer, o.Node);
        ClusterFields.Write(buffer, o.AgentId);
        ClusterFields.Write(buffer, o.TeamId);
        ClusterFields.Write(buffer, o.OwnerId);
        ClusterFields.Write(buffer, o.Backend);
        ClusterFields.Write(buffer, o.FinalStatus ?? "");
        Span<byte> position = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(position, o.Position);
        buffer.Write(position);
        buffer.Write(o.Data);
        return buffer.ToArray();
    }

    /// <summary>The output, or null for bytes that are not one (another version, cut short, a negative position).</summary>
    public static RelayedOutput? Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 1 || bytes[0] != Version)
        {
            return null;
        }
        var rest = bytes[1..];
        if (!ClusterFields.ReadText(ref rest, out string node) || !ClusterFields.ReadText(ref rest, out string agent) || !ClusterFields.ReadText(ref rest, out string team)
            || !ClusterFields.ReadText(ref rest, out string owner) || !ClusterFields.ReadText(ref rest, out string backend) || !ClusterFields.ReadText(ref rest, out string status)
            || rest.Length < 8)
        {
            return null;
        }
        var position = BinaryPrimitives.ReadInt64BigEndian(rest);
        if (position < 0 || agent.Length == 0 || team.Length == 0)
        {
            return null;
        }
        return new RelayedOutput(node, agent, team, owner, backend, position, rest[8..].ToArray(), status.Length > 0 ? status : null);
    }
}

/// <summary>
/// A request from one node to another (<see cref="Fields"/>: what it is about) or the answer to one (<see cref="IsReply"/>,
/// same <see cref="Id"/>), on the receiving node's own channel.
/// </summary>
public sealed record NodeCall(string Id, string From, bool IsReply, IReadOnlyList<string> Fields);

/// <summary>The bytes of a <see cref="NodeCall"/>: a version byte, a kind byte (1 request, 2 reply), the id, the sender, a count and the fields.</summary>
public static class NodeCallCodec
{
    private const byte Version = 1;

    public static byte[] Encode(NodeCall call)
    {
        using var buffer = new MemoryStream();
        buffer.WriteByte(Version);
        buffer.WriteByte(call.IsReply ? (byte)2 : (byte)1);
        ClusterFields.Write(buffer, call.Id);
        ClusterFields.Write(buffer, call.From);
        buffer.WriteByte(checked((byte)call.Fields.Count));
        foreach (var field in call.Fields)
        {
            ClusterFields.Write(buffer, field);
        }
        return buffer.ToArray();
    }

    public static NodeCall? Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 2 || bytes[0] != Version || bytes[1] is not (1 or 2))
        {
            return null;
        }
        var reply = bytes[1] == 2;
        var rest = bytes[2..];
        if (!ClusterFields.ReadText(ref rest, out string id) || !ClusterFields.ReadText(ref rest, out string from) || rest.Length < 1)
        {
            return null;
        }
        var count = rest[0];
        rest = rest[1..];
        var fields = new string[count];
        for (var i = 0; i < count; i++)
        {
            if (!ClusterFields.ReadText(ref rest, out fields[i]))
            {
                return null;
            }
        }
        return rest.IsEmpty && id.Length > 0 ? new NodeCall(id, from, reply, fields) : null;
    }
}
