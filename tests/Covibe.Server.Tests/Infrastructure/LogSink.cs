using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>Collects every log line a server writes (message and exception text), and each with the request (trace) it was written for.</summary>
public sealed class LogSink : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    public IReadOnlyCollection<string> Lines => _lines;

    /// <summary>The lines in order, with their category and the trace of the request that wrote them (null outside one).</summary>
    public IReadOnlyCollection<LogEntry> Entries => _entries;

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines, _entries);

    public void Dispose()
    {
    }

    public sealed record LogEntry(string Category, string Message, string? TraceId);

    private sealed class Logger(string category, ConcurrentQueue<string> lines, ConcurrentQueue<LogEntry> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var message = formatter(state, exception);
            lines.Enqueue($"{logLevel} {category}: {message} {exception}");
            entries.Enqueue(new LogEntry(category, message, System.Diagnostics.Activity.Current?.TraceId.ToString()));
        }
    }
}
