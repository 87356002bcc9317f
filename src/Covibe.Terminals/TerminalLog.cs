namespace Covibe.Terminals;

/// <summary>Terminal events. Never the bytes typed or shown, never tokens.</summary>
internal static partial class TerminalLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Terminal {SessionId} opened for {UserId} (pid {Pid}, {Shell})")]
    public static partial void Opened(ILogger logger, string sessionId, string userId, int pid, string shell);

    [LoggerMessage(Level = LogLevel.Information, Message = "Terminal {SessionId} ended (exit code {ExitCode})")]
    public static partial void Ended(ILogger logger, string sessionId, int exitCode);

    [LoggerMessage(Level = LogLevel.Information, Message = "Terminal {SessionId} unwatched for {Seconds} s: hanging up")]
    public static partial void IdleTimeout(ILogger logger, string sessionId, int seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Terminal {SessionId} could not start")]
    public static partial void StartFailed(ILogger logger, string sessionId, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Terminal connection from {Remote} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string remote, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Terminal connection for {UserId} opened")]
    public static partial void Connected(ILogger logger, string userId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Terminal connection for {UserId} closed")]
    public static partial void Disconnected(ILogger logger, string? userId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Terminal message {Type} failed ({ErrorId})")]
    public static partial void MessageFailed(ILogger logger, string type, string errorId, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Terminal {SessionId}: sending its output to a viewer failed ({ErrorId})")]
    public static partial void OutputFailed(ILogger logger, string sessionId, string errorId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Terminal {SessionId}: a viewer held output back for {Seconds} s and was detached")]
    public static partial void SlowViewer(ILogger logger, string sessionId, int seconds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Terminal connection for {UserId} reaches sessions on {Node}")]
    public static partial void PeerConnected(ILogger logger, string userId, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Terminal sessions on {Node} cannot be reached: {Reason}")]
    public static partial void PeerUnreachable(ILogger logger, string node, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "The connection to terminal sessions on {Node} ended: its viewers here were told")]
    public static partial void PeerLost(ILogger logger, string node);
}
