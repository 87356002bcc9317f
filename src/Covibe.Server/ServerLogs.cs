using Microsoft.Extensions.Logging.Console;

namespace Covibe.Server;

/// <summary>
/// The server's logs (composition root: it names the node, which the Cluster room knows). Plain text by default; JSON on request (<c>covibe serve --log-format json</c>, or
/// <c>Logging:Console:FormatterName=json</c>), one object a line, with the UTC time, the trace and span ids of the request
/// a line comes from, and the node it comes from; the team and agent a line concerns are fields of its state.
/// </summary>
public static class ServerLogs
{
    /// <summary>Whether the console writes JSON lines (so nothing else may write plain text to standard output).</summary>
    public static bool Json(IConfiguration configuration) =>
        string.Equals(configuration["Logging:Console:FormatterName"], ConsoleFormatterNames.Json, StringComparison.OrdinalIgnoreCase);

    public static ILoggingBuilder AddServerLogs(this ILoggingBuilder logging)
    {
        // Lines logged while a request (or anything else traced) is under way carry its trace and span.
        logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        logging.Services.Configure<JsonConsoleFormatterOptions>(o =>
        {
            o.IncludeScopes = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        });
        return logging;
    }

    /// <summary>With JSON logs, each request's lines (a hub or terminal connection's for its whole life) name this node.</summary>
    public static WebApplication UseServerLogs(this WebApplication app)
    {
        if (!Json(app.Configuration))
        {
            return app;
        }
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Covibe.Server");
        var node = app.Services.GetRequiredService<Features.Cluster.ThisNode>();
        app.Use(async (context, next) =>
        {
            using (logger.BeginScope(Node(node)))
            {
                await next(context);
            }
        });
        return app;
    }

    /// <summary>
    /// With JSON logs, what the server starts from here on (its background work: agents followed, previews deployed) logs
    /// with the node's name: the scope flows into all that starts after it.
    /// </summary>
    public static void NameTheNode(WebApplication app)
    {
        if (Json(app.Configuration))
        {
            _ = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Covibe.Server").BeginScope(Node(app.Services.GetRequiredService<Features.Cluster.ThisNode>()));
        }
    }

    private static NodeScope Node(Features.Cluster.ThisNode node) => new(node.Id);

    /// <summary>The scope naming the node: a field <c>Node</c>, and as a message <c>Node:id</c>.</summary>
    private sealed class NodeScope(string id) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public int Count => 1;

        public KeyValuePair<string, object?> this[int index] => index == 0 ? new("Node", id) : throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            yield return this[0];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => "Node:" + id;
    }
}
