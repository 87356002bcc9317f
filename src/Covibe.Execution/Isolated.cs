namespace Covibe.Execution;

/// <summary>The paths a job sees in a place of its own (the sandbox, a container), whatever they are on this machine.</summary>
public static class Isolated
{
    /// <summary>Where the team's workspace (or a job's files) appears.</summary>
    public const string Workspace = "/workspace";

    /// <summary>Where a job's runtime directory (FIFO, log, exit code) appears.</summary>
    public const string Runtime = "/covibe";

    /// <summary>Where such a job sees <paramref name="path"/>, a path of this machine in <paramref name="workspace"/>.</summary>
    public static string InWorkspace(string workspace, string path) => Workspace + path[workspace.Length..];

    /// <summary><paramref name="environment"/> for the user a job there runs as: <c>covibe</c>, at home in the workspace (or <paramref name="home"/>).</summary>
    public static Dictionary<string, string> AsUser(IReadOnlyDictionary<string, string> environment, string home = Workspace) =>
        new(environment) { ["HOME"] = home, ["USER"] = "covibe", ["LOGNAME"] = "covibe" };
}
