using System.Buffers.Binary;
using System.Text;

namespace Covibe.Server.Features.Cluster;

/// <summary>Length-prefixed fields (a 32-bit big-endian length, then the bytes): how the cluster's binary messages are laid out.</summary>
public static class ClusterFields
{
    public static void Write(Stream buffer, ReadOnlySpan<byte> field)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, field.Length);
        buffer.Write(length);
        buffer.Write(field);
    }

    public static bool Read(ref ReadOnlySpan<byte> rest, out ReadOnlySpan<byte> field)
    {
        field = default;
        if (rest.Length < 4)
        {
            return false;
        }
        var length = BinaryPrimitives.ReadInt32BigEndian(rest);
        if (length < 0 || length > rest.Length - 4)
        {
            return false;
        }
        field = rest.Slice(4, length);
        rest = rest[(4 + length)..];
        return true;
    }

    public static void Write(Stream buffer, string text) => Write(buffer, Encoding.UTF8.GetBytes(text));

    public static bool ReadText(ref ReadOnlySpan<byte> rest, out string text)
    {
        text = "";
        if (!Read(ref rest, out ReadOnlySpan<byte> field))
        {
            return false;
        }
        text = Encoding.UTF8.GetString(field);
        return true;
    }
}
