using System.Text.Json;
using System.Text.Json.Serialization;

namespace Covibe.Protocol;

/// <summary>
/// The terminal protocol of seed 004, spoken by <c>covibe terminald</c> (at <c>/</c>) and by
/// <c>covibe serve</c> (at <c>/terminal</c>). JSON text frames with a <c>type</c>; field names are
/// snake_case as in the seed. See docs/terminals.md.
/// </summary>
public static class TerminalMessageTypes
{
    // client -> server
    public const string Auth = "auth";
    public const string Command = "command";
    public const string Input = "input";
    // both ways
    public const string Session = "session";
    // server -> client
    public const string Ready = "ready";
    public const string Output = "output";
    public const string Error = "error";
    public const string Sessions = "sessions";
}

/// <summary>The <c>action</c> of a <c>session</c> message.</summary>
public static class TerminalActions
{
    // client -> server
    public const string Create = "create";
    public const string Attach = "attach";
    public const string Detach = "detach";
    public const string Resize = "resize";
    public const string Close = "close";
    public const string Share = "share";
    public const string List = "list";
    // server -> client
    public const string Created = "created";
    public const string Attached = "attached";
    public const string Detached = "detached";
    public const string Resized = "resized";
    public const string Closed = "closed";
    public const string Exited = "exited";
    public const string Shared = "shared";
}

public static class TerminalErrorCodes
{
    public const string InvalidMessage = "INVALID_MESSAGE";
    public const string MessageTooLarge = "MESSAGE_TOO_LARGE";
    public const string UnknownType = "UNKNOWN_TYPE";
    public const string UnknownAction = "UNKNOWN_ACTION";
    public const string Unauthorized = "UNAUTHORIZED";
    public const string Forbidden = "FORBIDDEN";
    public const string SessionNotFound = "SESSION_NOT_FOUND";
    public const string SessionExists = "SESSION_EXISTS";
    public const string SessionLimit = "SESSION_LIMIT";
    public const string InvalidCwd = "INVALID_CWD";
    public const string InvalidShell = "INVALID_SHELL";
    public const string InvalidEnv = "INVALID_ENV";
    public const string InvalidSize = "INVALID_SIZE";
    public const string InvalidVm = "INVALID_VM";
    public const string CommandTooLong = "COMMAND_TOO_LONG";
    public const string CommandFailed = "COMMAND_FAILED";
    public const string ViewerTooSlow = "VIEWER_TOO_SLOW";
    public const string InternalError = "INTERNAL_ERROR";
    public const string RateLimited = "RATE_LIMITED";
}

/// <summary>
/// <c>config</c> of <c>session create</c> (and <c>cols</c>/<c>rows</c> of <c>session resize</c>).
/// <see cref="Vm"/> (covibe serve only): run the terminal on one of your VMs, over SSH; <see cref="BoxId"/> (<c>boxId</c>, as on agent spawn): in one of your boxes.
/// </summary>
public sealed record TerminalConfig(string? Shell = null, string? Cwd = null, Dictionary<string, string>? Env = null, int? Cols = null, int? Rows = null, string? Vm = null,
    [property: JsonPropertyName("boxId")] string? BoxId = null);

/// <summary>
/// Any client message. Which fields count depends on <see cref="Type"/> (and <see cref="Action"/>):
/// <c>session</c> uses <see cref="Id"/> as the session id; <c>command</c> uses <see cref="Id"/> as the
/// command id and <see cref="Session"/>; <c>input</c> (raw keystrokes) uses <see cref="Session"/> and <see cref="Data"/>.
/// </summary>
public sealed record TerminalRequest(
    string? Type,
    string? Action = null,
    string? Id = null,
    string? Session = null,
    string? Command = null,
    string? Cwd = null,
    Dictionary<string, string>? Env = null,
    TerminalConfig? Config = null,
    string? Data = null,
    long? Since = null,
    bool? Shared = null,
    int? Cols = null,
    int? Rows = null,
    string? Token = null);

/// <summary>
/// A session as <c>GET /sessions</c> (seed 004) and the protocol describe it. <see cref="Status"/>: <c>active</c>
/// or <c>exited</c>; <see cref="Host"/>: the VM it runs on (covibe serve), absent for the server itself.
/// </summary>
public sealed record TerminalSessionInfo(
    string Id,
    DateTime CreatedAt,
    DateTime LastActivity,
    string Status,
    string? Owner = null,
    string? OwnerName = null,
    bool? Shared = null,
    int? Cols = null,
    int? Rows = null,
    int? Viewers = null,
    string? Host = null);

public sealed record TerminalSessionsResponse(TerminalSessionInfo[] Sessions);

/// <summary><c>GET /health</c> of seed 004; <see cref="Uptime"/> in seconds.</summary>
public sealed record TerminalHealthResponse(string Status, int Sessions, long Uptime, string Version);

public abstract record TerminalMessage([property: JsonPropertyName("type"), JsonPropertyOrder(-100)] string Type);

public sealed record TerminalReadyMessage(string User, string Name) : TerminalMessage(TerminalMessageTypes.Ready);

/// <summary>
/// Terminal output. <see cref="Id"/> is the last <c>command</c> typed into the session (null for raw input);
/// <see cref="End"/> is the byte position in the session's output after this data: attach with
/// <c>since</c> = the last <c>end</c> seen to resume without a gap.
/// </summary>
public sealed record TerminalOutputMessage(string? Id, string Session, string Data, DateTime Timestamp, long End) : TerminalMessage(TerminalMessageTypes.Output);

public sealed record TerminalErrorMessage(string? Id, string? Session, string Error, string Code) : TerminalMessage(TerminalMessageTypes.Error);

/// <summary>
/// A session event or reply: <see cref="From"/> (attach) is where the replayed output starts;
/// <see cref="Truncated"/> says the scrollback no longer held everything asked for.
/// </summary>
public sealed record TerminalSessionMessage(
    string Action,
    string Id,
    TerminalSessionInfo? Info = null,
    bool? ReadOnly = null,
    long? From = null,
    bool? Truncated = null,
    int? ExitCode = null) : TerminalMessage(TerminalMessageTypes.Session);

public sealed record TerminalSessionsMessage(TerminalSessionInfo[] Sessions) : TerminalMessage(TerminalMessageTypes.Sessions);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(TerminalRequest))]
[JsonSerializable(typeof(TerminalSessionsResponse))]
[JsonSerializable(typeof(TerminalHealthResponse))]
[JsonSerializable(typeof(TerminalReadyMessage))]
[JsonSerializable(typeof(TerminalOutputMessage))]
[JsonSerializable(typeof(TerminalErrorMessage))]
[JsonSerializable(typeof(TerminalSessionMessage))]
[JsonSerializable(typeof(TerminalSessionsMessage))]
public sealed partial class TerminalJsonContext : JsonSerializerContext
{
    /// <summary>
    /// For frames on the wire: terminal output is mostly escape sequences and non-ASCII text, which
    /// the default encoder would spell out as \uXXXX (these frames never land inside HTML).
    /// </summary>
    public static TerminalJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        PropertyNameCaseInsensitive = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
