namespace Covibe.Web;

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
