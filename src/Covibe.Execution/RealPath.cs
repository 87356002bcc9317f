using System.Runtime.InteropServices;

namespace Covibe.Execution;

public static class RealPath
{
    /// <summary>The absolute path with every symlink, <c>.</c> and <c>..</c> resolved (libc <c>realpath</c>); null if it does not exist.</summary>
    public static string? Resolve(string path)
    {
        var resolved = PtyNative.RealPath(path, 0);
        if (resolved == 0)
        {
            return null;
        }
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            PtyNative.Free(resolved);
        }
    }
}
