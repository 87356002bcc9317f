using System.Buffers.Binary;
using System.Text;

using Covibe.Server.Features.Cluster;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// A team event as one node tells the others: who sent it, the team, the members it has a variant for (an agent's controllers;
/// <c>*</c>: everyone), and the hub frames, made once.
/// </summary>
public sealed record TeamEventEnvelope(string Node, string TeamId, string[] Who, byte[] ForThem, byte[] ForOthers);

/// <summary>
/// The bytes of a <see cref="TeamEventEnvelope"/> on Redis: a version byte, then length-prefixed fields (UTF-8 strings, the
/// frames as they go on the wire). A frame for everyone is sent once.
/// </summary>
public static class TeamEventCodec
{
    private const byte Version = 1;

    public static byte[] Encode(TeamEventEnvelope e)
    {
        var same = ReferenceEquals(e.ForThem, e.ForOthers);
        using var buffer = new MemoryStream();
        buffer.WriteByte(Version);
        ClusterFields.Write(buffer, Encoding.UTF8.GetBytes(e.Node));
        ClusterFields.Write(buffer, Encoding.UTF8.GetBytes(e.TeamId));
        // The members, comma-separated (ids never hold a comma); before grants there was one, the owner, in the same field.
        ClusterFields.Write(buffer, Encoding.UTF8.GetBytes(string.Join(',', e.Who)));
        buffer.WriteByte(same ? (byte)1 : (byte)2);
        ClusterFields.Write(buffer, e.ForThem);
        if (!same)
        {
            ClusterFields.Write(buffer, e.ForOthers);
        }
        return buffer.ToArray();
    }

    /// <summary>The envelope, or null for bytes that are not one (another version, cut short).</summary>
    public static TeamEventEnvelope? Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 1 || bytes[0] != Version)
        {
            return null;
        }
        var rest = bytes[1..];
        if (!ClusterFields.Read(ref rest, out var node) || !ClusterFields.Read(ref rest, out var team) || !ClusterFields.Read(ref rest, out var owner) || rest.Length < 1)
        {
            return null;
        }
        var frames = rest[0];
        rest = rest[1..];
        if (frames is not (1 or 2) || !ClusterFields.Read(ref rest, out var first))
        {
            return null;
        }
        var second = first;
        if (frames == 2 && !ClusterFields.Read(ref rest, out second))
        {
            return null;
        }
        if (!rest.IsEmpty)
        {
            return null;
        }
        var who = Encoding.UTF8.GetString(owner).Split(',', StringSplitOptions.RemoveEmptyEntries);
        var forThem = first.ToArray();
        return new TeamEventEnvelope(Encoding.UTF8.GetString(node), Encoding.UTF8.GetString(team), who,
            forThem, frames == 1 ? forThem : second.ToArray());
    }
}

/// <summary>One node's members of one team, as it tells the others: who is connected there, with what status and how many connections.</summary>
public sealed record NodePresence(string Node, string TeamId, IReadOnlyDictionary<string, (string Status, int Connections)> Members);

/// <summary>The text of a <see cref="NodePresence"/> on Redis: <c>node TAB team</c>, then a line <c>user TAB status TAB connections</c> each.</summary>
public static class NodePresenceCodec
{
    public static string Encode(NodePresence presence) =>
        string.Join('\n', presence.Members.OrderBy(m => m.Key, StringComparer.Ordinal)
            .Select(m => $"{m.Key}\t{m.Value.Status}\t{m.Value.Connections.ToString(System.Globalization.CultureInfo.InvariantCulture)}")
            .Prepend($"{presence.Node}\t{presence.TeamId}"));

    /// <summary>The presence, or null for text that is not one.</summary>
    public static NodePresence? Decode(string? text)
    {
        var lines = (text ?? "").Split('\n');
        var head = lines[0].Split('\t');
        if (head.Length != 2 || head[0].Length == 0 || head[1].Length == 0)
        {
            return null;
        }
        var members = new Dictionary<string, (string, int)>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(1))
        {
            var fields = line.Split('\t');
            if (fields.Length != 3 || fields[0].Length == 0 || fields[1] is not (Protocol.PresenceStatuses.Online or Protocol.PresenceStatuses.Away)
                || !int.TryParse(fields[2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var connections))
            {
                return null;
            }
            members[fields[0]] = (fields[1], connections);
        }
        return new NodePresence(head[0], head[1], members);
    }
}
