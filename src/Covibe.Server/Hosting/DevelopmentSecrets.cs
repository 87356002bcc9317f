using Covibe.Server.Hosting;
namespace Covibe.Server.Hosting;

/// <summary>
/// In development only, a secret the operator did not set (JWT_SECRET, ENCRYPTION_KEY) is made
/// once and kept in the data directory, readable by its owner alone, so restarts keep working.
/// </summary>
internal static class DevelopmentSecrets
{
    public static string ReadOrCreate(string dataDirectory, string fileName)
    {
        var path = Path.Combine(dataDirectory, fileName);
        if (!File.Exists(path))
        {
            ServerOptions.EnsureDirectory(dataDirectory);
            using var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            using var writer = new StreamWriter(stream);
            writer.Write(Tokens.NewToken(48));
        }
        return File.ReadAllText(path).Trim();
    }
}
