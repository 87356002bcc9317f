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
            if (Path.GetFileName(file).StartsWith("cm-", StringComparison.Ordinal) || file.EndsWith(".sock", StringComparison.Ordinal) || Path.GetFileName(file) == "stdin")
            {
                continue; // sockets and FIFOs: nothing at rest
            }
            var text = Encoding.Latin1.GetString(await File.ReadAllBytesAsync(file));
            foreach (var secret in secrets)
            {
                text.ShouldNotContain(secret, customMessage: file);
            }
        }
    }
}
