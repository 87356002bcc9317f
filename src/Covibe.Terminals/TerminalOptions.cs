using System.ComponentModel.DataAnnotations;

namespace Covibe.Terminals;

/// <summary>
/// <c>Covibe:Terminals</c>. Seed 004's variables map onto it: MAX_SESSIONS, SESSION_TIMEOUT,
/// MAX_COMMAND_LENGTH (and, for <c>covibe terminald</c>, PORT, JWT_SECRET, ALLOWED_ORIGINS).
/// </summary>
public sealed class TerminalOptions
{
    public const string Section = "Covibe:Terminals";

    /// <summary>Sessions open at once on this server (MAX_SESSIONS).</summary>
    [Range(1, 100_000, ErrorMessage = "MAX_SESSIONS (Covibe:Terminals:MaxSessions) must be between {1} and {2}.")]
    public int MaxSessions { get; set; } = 100;

    /// <summary>Sessions one user may have open at once.</summary>
    [Range(1, 100_000, ErrorMessage = "MAX_SESSIONS_PER_USER (Covibe:Terminals:MaxSessionsPerUser) must be between {1} and {2}.")]
    public int MaxSessionsPerUser { get; set; } = 10;

    /// <summary>Seconds a session with nobody attached stays open (SESSION_TIMEOUT); then its shell is hung up.</summary>
    [Range(1, 7 * 24 * 3600, ErrorMessage = "SESSION_TIMEOUT (Covibe:Terminals:SessionTimeoutSeconds) must be between {1} and {2} seconds.")]
    public int SessionTimeoutSeconds { get; set; } = 3600;

    /// <summary>Longest <c>command</c> or <c>input</c> in characters (MAX_COMMAND_LENGTH).</summary>
    [Range(1, 1_000_000, ErrorMessage = "MAX_COMMAND_LENGTH (Covibe:Terminals:MaxCommandLength) must be between {1} and {2}.")]
    public int MaxCommandLength { get; set; } = 10_000;

    /// <summary>
    /// Working directories must be inside this directory (after resolving symlinks); a session
    /// starts here unless it asks for a directory below it. Default: the server user's home.
    /// </summary>
    public string? Root { get; set; }

    /// <summary>Shell used when a session names none; any shell must be listed in /etc/shells. Default: bash if installed, else sh.</summary>
    public string? DefaultShell { get; set; }

    /// <summary>Output kept per session for viewers who attach later (the scrollback), in bytes.</summary>
    [Range(4096, 64 * 1024 * 1024)]
    public int ScrollbackBytes { get; set; } = 256 * 1024;

    /// <summary>How far (bytes) the program may run ahead of the slowest viewer before it is held back.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxViewerLagBytes { get; set; } = 64 * 1024;

    /// <summary>A viewer that holds a session's output back this long is detached with VIEWER_TOO_SLOW (it may attach again).</summary>
    [Range(1, 3600)]
    public int SlowViewerSeconds { get; set; } = 10;

    /// <summary>Per-shell limits (setrlimit via prlimit): open files.</summary>
    [Range(64, 1_048_576)]
    public int MaxOpenFiles { get; set; } = 4096;

    /// <summary>Per-shell limits: processes of the shell's user (not enforced for root).</summary>
    [Range(16, 1_048_576)]
    public int MaxProcesses { get; set; } = 4096;

    /// <summary>Per-shell limits: address space of each process in MiB; 0 = unlimited.</summary>
    [Range(0, 1_048_576)]
    public int MaxMemoryMiB { get; set; }

    /// <summary>Largest client message in bytes; larger ones get MESSAGE_TOO_LARGE.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = 256 * 1024;

    /// <summary>Messages one connection may send per second (bursts of twice that); beyond, RATE_LIMITED. Keystrokes are one message each.</summary>
    [Range(1, 100_000)]
    public int MessagesPerSecond { get; set; } = 200;

    /// <summary>Seconds a browser connection may take to send its <c>auth</c> message.</summary>
    [Range(1, 600)]
    public int AuthTimeoutSeconds { get; set; } = 10;

    /// <summary>WebSocket ping interval in seconds; a peer that does not answer within the same time is dropped.</summary>
    [Range(1, 3600)]
    public int KeepAliveSeconds { get; set; } = 20;
}
