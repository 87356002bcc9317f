namespace Covibe.Protocol;

// The runner (`covibe runner`): a VM that dials out to the server. REST for registration and credentials, then one
// versioned message protocol over a WebSocket (GET /api/runner/connect) or HTTPS long polling (POST /api/runner/poll).
// docs/runner-protocol.md describes every message.

/// <summary>The runner exchanges its one-time registration token for its own credential (<c>POST /api/runner/register</c>).</summary>
public sealed record RunnerRegisterRequest(string? Token, string? Hostname = null, string? User = null, string? Version = null);

/// <summary>
/// The runner's own credential (shown once; the server keeps only its hash) and the VM it is. <see cref="HeartbeatSeconds"/>:
/// how often it renews its lease; <see cref="LeaseSeconds"/>: how long the server waits for it before its agents count as lost.
/// </summary>
public sealed record RunnerRegisterResponse(string VmId, string Name, string Credential, int HeartbeatSeconds, int LeaseSeconds);

/// <summary>A new credential for the same runner (<c>POST /api/runner/rotate</c>): the old one works until the new one is first used.</summary>
public sealed record RunnerRotateResponse(string Credential);

/// <summary>A one-time registration token for a runner VM (<c>POST /api/vm/{id}/registration-token</c>, owner only), with the command that uses it.</summary>
public sealed record RunnerRegistrationDto(string VmId, string RegistrationToken, DateTime ExpiresAt, string Command);

/// <summary>One entry of a VM's audit log: who did what to it, when (<c>GET /api/vm/{id}/audit</c>, owner only; append-only).</summary>
public sealed record VmAuditDto(long Id, DateTime At, string Actor, string? ActorName, string Action, string? Detail);

/// <summary>Message types of the runner protocol (version <see cref="RunnerProtocol.Version"/>).</summary>
public static class RunnerProtocol
{
    public const int Version = 1;

    // runner -> server
    public const string Hello = "hello";
    public const string Result = "result";
    public const string Output = "output";
    public const string State = "state";
    public const string Heartbeat = "heartbeat";
    public const string TerminalOutput = "terminal_output";
    public const string TerminalExit = "terminal_exit";

    // server -> runner
    public const string Welcome = "welcome";
    public const string Start = "start";
    public const string Follow = "follow";
    public const string Input = "input";
    public const string Signal = "signal";
    public const string Rotate = "rotate";
    public const string TerminalOpen = "terminal_open";
    public const string TerminalInput = "terminal_input";
    public const string TerminalResize = "terminal_resize";
    public const string TerminalClose = "terminal_close";
    /// <summary>A piece of an agent's work tree (a git bundle) for the runner to keep until <c>start</c> clones it.</summary>
    public const string TreeData = "tree_data";
    /// <summary>A short command (<c>argv</c>, never through a shell) to run now and answer: an agent's changes read there.</summary>
    public const string Run = "run";

    // both
    public const string Error = "error";

    /// <summary>WebSocket close code: the runner's credential was revoked (or is unknown): do not reconnect with it.</summary>
    public const int ClosedRevoked = 4401;
    /// <summary>WebSocket close code: another connection of the same runner took over.</summary>
    public const int ClosedReplaced = 4409;
}

/// <summary>
/// One message of the runner protocol. <see cref="Type"/> says which (<see cref="RunnerProtocol"/>) and which fields it
/// carries; <see cref="Id"/> pairs a server request with the runner's <c>result</c>. Bytes travel base64 in
/// <see cref="Data"/>; agent output carries its byte <see cref="Offset"/> in the agent's log, so a resend is idempotent.
/// </summary>
public sealed record RunnerMessage(
    string Type,
    string? Id = null,
    string? AgentId = null,
    long? Offset = null,
    string? Data = null,
    int? Version = null,
    string? Hostname = null,
    string? User = null,
    RunnerLaunch? Launch = null,
    RunnerProcess? Process = null,
    RunnerFollow[]? Follow = null,
    string? Signal = null,
    string? State = null,
    int? ExitCode = null,
    long? Size = null,
    string? Error = null,
    string? TerminalId = null,
    int? Cols = null,
    int? Rows = null,
    string? Cwd = null,
    int? HeartbeatSeconds = null,
    string? VmId = null,
    string[]? Argv = null);

/// <summary>
/// What to start (the same wrapper, layout and argv as an SSH VM): the runtime directory <see cref="Runtime"/> and working
/// directory <see cref="WorkingDirectory"/> relative to the runner user's home, the repository to clone, the argv (never
/// through a shell), variables set on top of the runner's own environment, and the first input (base64).
/// <see cref="TreeCommit"/> and <see cref="TreeBranch"/>: a work tree on the team's repository, cloned from the bundle sent
/// before (<c>tree_data</c>) and checked out at that commit on that branch.
/// </summary>
public sealed record RunnerLaunch(
    string Runtime,
    string WorkingDirectory,
    string[] Argv,
    Dictionary<string, string> Environment,
    string? RepositoryUrl = null,
    string? Branch = null,
    string? Input = null,
    string? TreeCommit = null,
    string? TreeBranch = null);

/// <summary>A started agent on the runner's machine: its runtime directory (absolute there), PID and the PID's start time.</summary>
public sealed record RunnerProcess(string RuntimeDirectory, int Pid, long StartTime);

/// <summary>An agent the runner sends output for, from byte <see cref="From"/> of its log (what the server already holds).</summary>
public sealed record RunnerFollow(string AgentId, RunnerProcess Process, long From);

/// <summary>
/// Long polling (<c>POST /api/runner/poll</c>): what the runner sends; the answer is what the server has for it. With
/// <see cref="Wait"/> the server holds the answer until it has something (or its poll wait passes); without, it answers at once.
/// </summary>
public sealed record RunnerPoll(RunnerMessage[] Messages, string? Session = null, bool Wait = true);

/// <summary>
/// The server's answer to a poll: its messages for the runner (empty after the wait if it had none), and the poll
/// <see cref="Session"/> to send back (a new one means the server started over: send <c>hello</c> again).
/// </summary>
public sealed record RunnerPollReply(RunnerMessage[] Messages, string Session);
