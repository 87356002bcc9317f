using System.Text;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>Checks that no regular file under a directory holds a secret (sockets and FIFOs are skipped).</summary>
public static class DiskScan
{
    public static async Task ShouldNotHoldAsync(string directory, params string[] secrets)
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(directory, "*", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(file).StartsWith("cm-", StringComparison.Ordinal) || file.EndsWith(".sock", StringComparison.Ordinal) || Path.GetFileName(file) == "stdin"
                || new FileInfo(file).LinkTarget is not null)
            {
                continue; // sockets, FIFOs and links: nothing at rest (a link's target is scanned where it is)
            }
            byte[] bytes;
            try
            {
                bytes = await File.ReadAllBytesAsync(file);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                continue; // the server removed it meanwhile (an older preview deploy): nothing left at rest
            }
            var text = Encoding.Latin1.GetString(bytes);
            foreach (var secret in secrets)
            {
                text.ShouldNotContain(secret, customMessage: file);
            }
        }
    }
}
