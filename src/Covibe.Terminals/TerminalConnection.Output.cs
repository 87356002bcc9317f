using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;

namespace Covibe.Terminals;

/// <summary>Attachments: each sends its session's output to the client as the client takes it.</summary>
internal sealed partial class TerminalConnection
{
    private async Task AttachAsync(TerminalSession session, long? since, bool readOnly)
    {
        await DetachAsync(session.Id);
        var cursor = session.Attach(since);
        var attachment = new Attachment(session, cursor, CancellationTokenSource.CreateLinkedTokenSource(_closing.Token));
        _attachments[session.Id] = attachment;
        attachment.Pump = PumpAsync(attachment, readOnly, _user!);
    }

    private async Task DetachAsync(string sessionId)
    {
        if (_attachments.Remove(sessionId, out var attachment))
        {
            await attachment.StopAsync();
        }
    }

    /// <summary>Sends the session's output from the cursor on, then <c>exited</c> when the shell has gone.</summary>
    private async Task PumpAsync(Attachment attachment, bool readOnly, TerminalUser user)
    {
        var (session, cursor) = (attachment.Session, attachment.Cursor);
        var cancellationToken = attachment.Stopping.Token;
        var buffer = new byte[OutputChunk];
        var frame = new ArrayBufferWriter<byte>(OutputChunk + 1024);
        var sizeVersion = session.SizeVersion;
        try
        {
            Send(new TerminalSessionMessage(TerminalActions.Attached, session.Id, session.Info(), readOnly, cursor.From, cursor.Truncated ? true : null),
                TerminalJsonContext.Wire.TerminalSessionMessage);
            while (true)
            {
                if (readOnly && !session.IsVisibleTo(user))
                {
                    Send(new TerminalSessionMessage(TerminalActions.Detached, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage);
                    return; // the owner stopped sharing
                }
                if (session.SizeVersion != sizeVersion)
                {
                    // Resized (by this or another connection): every viewer hears it, so watchers draw at the program's size.
                    sizeVersion = session.SizeVersion;
                    Send(new TerminalSessionMessage(TerminalActions.Resized, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage);
                }
                switch (cursor.Take(buffer, out var count))
                {
                    case TakeState.Data:
                        WriteOutputFrame(frame, session, buffer.AsSpan(0, count), cursor.Position);
                        await _outbox.SendStreamAsync(frame.WrittenSpan.ToArray(), cancellationToken);
                        break;
                    case TakeState.Empty:
                        await cursor.WaitAsync(cancellationToken);
                        break;
                    case TakeState.Completed:
                        var exitCode = await session.Exited.WaitAsync(cancellationToken);
                        Send(new TerminalSessionMessage(TerminalActions.Exited, session.Id, session.Info(), ExitCode: exitCode), TerminalJsonContext.Wire.TerminalSessionMessage);
                        return;
                    case TakeState.Evicted:
                        TerminalLog.SlowViewer(logger, session.Id, options.SlowViewerSeconds);
                        Error(null, session.Id, TerminalErrorCodes.ViewerTooSlow,
                            $"This connection did not take the output for {options.SlowViewerSeconds} s and held the terminal back, so it was detached. Attach again with \"since\": {cursor.Position} to catch up.");
                        return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            // Detached, or the client went away.
        }
        catch (Exception e)
        {
            // A fault of ours: the viewer hears it (and where to attach again) instead of its output stopping without a word.
            var errorId = NewErrorId();
            TerminalLog.OutputFailed(logger, session.Id, errorId, e);
            Error(null, session.Id, TerminalErrorCodes.InternalError,
                $"The server failed to send this terminal's output (error id {errorId}). Attach again with \"since\": {cursor.Position} to go on.");
        }
        finally
        {
            session.Detach(cursor);
        }
    }

    private static readonly JsonWriterOptions FrameOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    /// <summary>
    /// An <see cref="TerminalOutputMessage"/> written straight from the output bytes into a reused
    /// buffer: no string of the data and no large short-lived arrays on the hot path. Output that
    /// is not valid UTF-8 goes through a string, which replaces the bad bytes with U+FFFD.
    /// </summary>
    private void WriteOutputFrame(ArrayBufferWriter<byte> frame, TerminalSession session, ReadOnlySpan<byte> data, long end)
    {
        frame.ResetWrittenCount();
        using var writer = new Utf8JsonWriter(frame, FrameOptions);
        writer.WriteStartObject();
        writer.WriteString("type"u8, TerminalMessageTypes.Output);
        if (session.LastCommandId is { } commandId)
        {
            writer.WriteString("id"u8, commandId);
        }
        writer.WriteString("session"u8, session.Id);
        if (System.Text.Unicode.Utf8.IsValid(data))
        {
            writer.WriteString("data"u8, data);
        }
        else
        {
            writer.WriteString("data"u8, Encoding.UTF8.GetString(data));
        }
        writer.WriteString("timestamp"u8, time.GetUtcNow().UtcDateTime);
        writer.WriteNumber("end"u8, end);
        writer.WriteEndObject();
    }

    private sealed class Attachment(TerminalSession session, OutputCursor cursor, CancellationTokenSource stopping)
    {
        public TerminalSession Session { get; } = session;

        public OutputCursor Cursor { get; } = cursor;

        public CancellationTokenSource Stopping { get; } = stopping;

        public Task Pump { get; set; } = Task.CompletedTask;

        public async Task StopAsync()
        {
            await Stopping.CancelAsync();
            await Pump;
            Stopping.Dispose();
        }
    }
}
