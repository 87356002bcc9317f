namespace Covibe.Execution;

/// <summary>
/// Seed 001's connection strategy layer: where and how an agent process runs, and a member's shell beside it. Every
/// backend runs the agent detached from the server (its own session), appends everything it prints to a log on the
/// machine where it runs, and keeps its stdin open through a FIFO, so the agent outlives the server and the log is the
/// source of truth for its output; and opens a terminal on that machine (<see cref="OpenTerminalAsync"/>).
/// </summary>
public interface IExecutionBackend
{
    /// <summary>The name stored with each agent (<c>local</c>, <c>ssh</c>, ...), to find the backend again after a restart.</summary>
    string Name { get; }

    /// <summary>Runs on another machine, named by each job's target (a VM id), which keeps an audit log of what is done there.</summary>
    bool Remote => false;

    Task<AgentProcess> StartAsync(AgentLaunch launch, CancellationToken cancellationToken);

    /// <summary>Whether the process is still the one that was started (not a reused PID), and its exit code once it has exited.</summary>
    Task<AgentProcessState> ProbeAsync(AgentProcess process, CancellationToken cancellationToken);

    /// <summary>Reads the agent's output log from <paramref name="offset"/>; 0 when nothing new is there yet.</summary>
    Task<int> ReadOutputAsync(AgentProcess process, long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>The agent's log as a file on this machine, to be woken by its writes (<see cref="FileChanges"/>); null: poll it.</summary>
    string? LocalLogPath(AgentProcess process) => null;

    /// <summary>
    /// Whether this server node can follow the process: its log (and so the process) is reachable from here. A node
    /// taking over another's agents asks first: an agent on the other node's machine is not its to judge.
    /// </summary>
    ValueTask<bool> CanFollowAsync(AgentProcess process, CancellationToken cancellationToken) =>
        ValueTask.FromResult(LocalLogPath(process) is null || Directory.Exists(process.RuntimeDirectory));

    /// <summary>
    /// The other server node that must start agents at <paramref name="target"/> (the one it is connected to, for a
    /// target that dials in); null: this node can.
    /// </summary>
    ValueTask<string?> StartsElsewhereAsync(string? target, CancellationToken cancellationToken) => ValueTask.FromResult<string?>(null);

    /// <summary>Writes to the agent's stdin. Fails with <see cref="AgentNotRunningException"/> once it has exited.</summary>
    Task WriteInputAsync(AgentProcess process, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    Task SignalAsync(AgentProcess process, AgentSignal signal, CancellationToken cancellationToken);

    /// <summary>Closes the agent's stdin: it reads EOF (and, if it reads to the end, finishes).</summary>
    Task CloseInputAsync(AgentProcess process, CancellationToken cancellationToken);

    /// <summary>
    /// Runs a short command on <paramref name="target"/>, the machine of another place (a VM), as the user its jobs run as,
    /// in that user's home: its exit code, output (text) and errors. Only the backends of other machines do
    /// (<see cref="Remote"/>); on this machine the caller runs it in the sandbox itself.
    /// </summary>
    Task<(int Code, string Output, string Errors)> RunShortAsync(string target, IReadOnlyList<string> argv, ReadOnlyMemory<byte>? stdin, TimeSpan timeout,
        CancellationToken cancellationToken) =>
        throw new NotSupportedException($"The {Name} backend runs no short commands on another machine.");

    /// <summary>
    /// Opens a member's shell here, on a PTY: <see cref="ShellLaunch.Shell"/> as this place runs shells. Throws
    /// <see cref="IOException"/> with a reason to show when it cannot.
    /// </summary>
    Task<IPty> OpenTerminalAsync(ShellLaunch launch, CancellationToken cancellationToken);
}

/// <summary>
/// A member's shell: <see cref="Shell"/> as the terminal library made it (program, working directory, environment, size;
/// its paths are this machine's, under <see cref="Workspace"/>, or the box's inside it). <see cref="TeamId"/>: whose
/// workspace; <see cref="Target"/>: the machine within the backend (a VM id); <see cref="Exec"/>: the running container
/// (a box); <see cref="RemoteDirectory"/>: where on a VM (relative to its user's home), instead of the shell's own;
/// <see cref="Egress"/>: the team's egress policy, for the places on this machine that enforce it.
/// </summary>
public sealed record ShellLaunch(
    PtyStartInfo Shell,
    string? TeamId = null,
    string? Target = null,
    string? Workspace = null,
    ContainerExec? Exec = null,
    string? RemoteDirectory = null,
    Egress.TeamEgress? Egress = null);

/// <summary>
/// A backend under the name stored with each agent, made when first used (the sandbox's needs bubblewrap, which a server
/// that opted out of it may lack; the container backend an engine client). The server registers one per backend.
/// </summary>
public sealed record NamedBackend(string Name, Lazy<IExecutionBackend> Backend);

/// <summary>
/// What to run: an agent, or any detached job. <see cref="Argv"/> is never passed through a shell. <see cref="WorkingDirectory"/> is
/// relative to the team's workspace: <see cref="Workspace"/> on this machine (local, sandbox and
/// container backends), <c>~/project</c> on a VM (or <see cref="RemoteDirectory"/>, relative to the VM user's home).
/// <see cref="Target"/>: the machine within the backend (a VM id). <see cref="Service"/>: a job that serves on a port, not an
/// agent; <see cref="Exec"/>: in a container that already runs, not a new one. <see cref="Egress"/>: the team's egress
/// policy, for the places on this machine that enforce it (the sandbox here; a container's bridge is walled by the server).
/// </summary>
public sealed record AgentLaunch(
    string AgentId,
    IReadOnlyList<string> Argv,
    string WorkingDirectory,
    IReadOnlyDictionary<string, string> Environment,
    string? RepositoryUrl = null,
    string? Branch = null,
    byte[]? InitialInput = null,
    string? Target = null,
    string? Workspace = null,
    string? TeamId = null,
    string? OwnerId = null,
    ServiceLaunch? Service = null,
    ContainerExec? Exec = null,
    string? RemoteDirectory = null,
    Egress.TeamEgress? Egress = null,
    WorkTree? Tree = null);

/// <summary>
/// The working directory starts as a clone of <see cref="Source"/>, a repository on this machine that the job sees
/// read-only at the same path and borrows every object from (<c>git clone --shared</c>: no copy), checked out at
/// <see cref="Commit"/> on a new branch <see cref="Branch"/>. The job owns its clone (its own <c>.git</c>); it cannot
/// change the source. On another machine (an SSH VM) the source is a bundle of <see cref="Reference"/> (the source's
/// reference to <see cref="Commit"/>) copied there first, and the clone has the objects of its own.
/// </summary>
public sealed record WorkTree(string Source, string Commit, string Branch, string? Reference = null)
{
    /// <summary>How the wrapper is told (<see cref="AgentWrapper"/>; it unsets them before the agent starts).</summary>
    public IEnumerable<KeyValuePair<string, string>> Environment =>
        [new("COVIBE_TREE_SOURCE", Source), new("COVIBE_TREE_COMMIT", Commit), new("COVIBE_TREE_BRANCH", Branch)];

    /// <summary><paramref name="environment"/> with the tree's variables added for the wrapper.</summary>
    public static IReadOnlyDictionary<string, string> With(IReadOnlyDictionary<string, string> environment, WorkTree? tree)
    {
        if (tree is null)
        {
            return environment;
        }
        var merged = new Dictionary<string, string>(environment);
        foreach (var (key, value) in tree.Environment)
        {
            merged[key] = value;
        }
        return merged;
    }
}

/// <summary>
/// A job that serves on <see cref="Port"/> of this machine's 127.0.0.1 rather than an agent. In a container (named <see cref="Name"/>,
/// of the type <see cref="Kind"/>, its id recorded under <see cref="IdKey"/>) it is held to the service limits, publishes its
/// <see cref="ContainerPort"/> there, and may run in an <see cref="Image"/> of its own starting in <see cref="ImageWorkingDirectory"/>,
/// instead of the default image with the files mounted.
/// </summary>
public sealed record ServiceLaunch(string Kind, string Name, string IdKey, int Port, string? Image = null, string? ImageWorkingDirectory = null, int? ContainerPort = null);

/// <summary>
/// A job inside a container that already runs: as <see cref="User"/> (uid <see cref="Uid"/>:<see cref="Gid"/> owns its runtime
/// directory) in <see cref="WorkingDirectory"/>, with its runtime directory under <see cref="RuntimeRoot"/> on this machine, which the
/// container sees at <see cref="Containers.ContainerExecBackend.RuntimeMount"/>.
/// </summary>
public sealed record ContainerExec(string Container, string User, uint Uid, uint Gid, string WorkingDirectory, string RuntimeRoot);

/// <summary>A started agent, as stored in the database so that a restarted server can find it again.</summary>
/// <summary><see cref="Target"/>: the machine it runs on, for remote backends (a VM id).</summary>
public sealed record AgentProcess(string Backend, string RuntimeDirectory, int Pid, long StartTime, string? Target = null);

public enum AgentRunState
{
    /// <summary>Preparing: cloning the repository.</summary>
    Starting,
    Running,
    Exited,
    /// <summary>The process is gone without recording an exit code (killed, or the machine restarted).</summary>
    Gone,
}

/// <summary>
/// <see cref="StartedAt"/>: when the agent itself started (after any clone), if it has. <see cref="Reason"/>: for
/// <see cref="AgentRunState.Gone"/>, why the backend no longer knows it, when it can say.
/// </summary>
public sealed record AgentProcessState(AgentRunState State, int? ExitCode = null, DateTime? StartedAt = null, string? Reason = null);

public enum AgentSignal
{
    /// <summary>Like Ctrl-C: to the agent, not to its wrapper.</summary>
    Interrupt,
    /// <summary>SIGTERM to the agent's whole process group.</summary>
    Terminate,
    /// <summary>SIGKILL to the agent's whole process group.</summary>
    Kill,
}

public sealed class AgentNotRunningException(string message) : Exception(message);

/// <summary>
/// The place did not answer (its container engine stopped, or was too slow), so nothing was started or opened there: the
/// caller may place the work again, elsewhere (the fallback), or say the place is unavailable.
/// </summary>
public sealed class PlaceUnreachableException(string message, Exception inner) : IOException(message, inner);
