namespace Covibe.Server.Hosting;

/// <summary><c>Covibe</c>: where the server keeps its files (<c>--data</c> or <c>COVIBE_DATA</c>).</summary>
public sealed class ServerOptions
{
    public const string Section = "Covibe";

    /// <summary>Defaults to <c>$XDG_DATA_HOME/covibe</c>, else <c>~/.local/share/covibe</c>.</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>
    /// <c>PUBLIC_URL</c>: the address members and GitHub use to reach this server (in webhook URLs). Unset: the
    /// first address it listens on; set it when listening on every address or behind a proxy.
    /// </summary>
    public string? PublicUrl { get; set; }

    /// <summary>Creates the data directory readable by its owner only: it holds the database and secrets.</summary>
    internal static void EnsureDirectory(string path)
    {
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    internal static string DefaultDataDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var root = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share")
            : xdg;
        return Path.Combine(root, "covibe");
    }
}
