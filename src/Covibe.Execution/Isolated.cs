namespace Covibe.Execution;

/// <summary>The paths a job sees in a place of its own (the sandbox, a container), whatever they are on this machine.</summary>
public static class Isolated
{
    /// <summary>Where the team's workspace (or a job's files) appears.</summary>
    public const string Workspace = "/workspace";

    /// <summary>Where a job's runtime directory (FIFO, log, exit code) appears.</summary>
    public const string Runtime = "/covibe";
}
