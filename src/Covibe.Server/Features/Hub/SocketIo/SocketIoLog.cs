namespace Covibe.Server.Features.Hub.SocketIo;

/// <summary>The Socket.IO endpoint's log: sessions by their connection id (never the Engine.IO session id).</summary>
internal static partial class SocketIoLog
{
    [LoggerMessage(EventId = 4101, Level = LogLevel.Debug, Message = "Socket.IO connection {ConnectionId} opened over {Transport}")]
    public static partial void Opened(ILogger logger, string connectionId, string transport);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Debug, Message = "Socket.IO connection {ConnectionId} upgraded to a WebSocket")]
    public static partial void Upgraded(ILogger logger, string connectionId);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Debug, Message = "Socket.IO connection {ConnectionId} closed: {Reason}")]
    public static partial void Closed(ILogger logger, string connectionId, string reason);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Warning, Message = "Socket.IO connection refused: origin {Origin} is not allowed")]
    public static partial void OriginRefused(ILogger logger, string origin);

    [LoggerMessage(EventId = 4105, Level = LogLevel.Information, Message = "Socket.IO connection {ConnectionId}: a second WebSocket for its session was refused")]
    public static partial void SecondWebSocket(ILogger logger, string connectionId);
}
