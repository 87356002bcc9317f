using System.Text;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Features.Agents;

namespace Covibe.Cli;

/// <summary>
/// Prints an agent's output as it arrives: raw bytes as they are, or (by default) stream-json
/// turned into readable lines: text, tool calls and their results, permission requests, and the final result with cost;
/// and between them, in place, who did what to the agent (<see cref="Note"/>). <paramref name="start"/>: the output
/// position of the first byte written.
/// </summary>
internal sealed class AgentRenderer(TextWriter output, bool raw, long start = 0)
{
    private readonly LineSplitter _lines = new();
    private readonly Stream _rawOut = Console.OpenStandardOutput();
    private readonly SortedDictionary<(long Position, long Id), string> _notes = [];
    private readonly HashSet<long> _noted = [];
    private readonly long _start = start;
    private long _rendered = start;

    /// <summary>Who did what, shown once the output has passed <see cref="AgentActionDto.Position"/> (after that line); each once.</summary>
    public void Note(AgentActionDto action)
    {
        if (raw || !_noted.Add(action.Id))
        {
            return;
        }
        _notes[(action.Position, action.Id)] = $"  · {action.ByName ?? "Covibe"} {action.Text}";
        WriteNotes();
    }

    private void WriteNotes()
    {
        while (_notes.Count > 0 && _notes.First() is var next && next.Key.Position <= _rendered)
        {
            output.WriteLine(next.Value);
            _notes.Remove(next.Key);
        }
        output.Flush();
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        if (raw)
        {
            _rawOut.Write(data);
            _rawOut.Flush();
            return;
        }
        _lines.Feed(data, Render);
    }

    /// <summary>Prints a last line that had no newline (the agent ended mid-line).</summary>
    public void Flush() => _lines.Flush(Render);

    private void Render(ReadOnlySpan<byte> line, long position)
    {
        _rendered = _start + position + line.Length;
        foreach (var e in StreamJson.Parse(line, _start + position))
        {
            var text = e.Kind switch
            {
                "init" => $"● started{(e.Model is null ? "" : $" ({e.Model})")}",
                "text" => e.Text,
                "thinking" => $"(thinking) {e.Text}",
                "tool_use" => $"→ {e.Tool}: {Summary(e.Input)}",
                "tool_result" => $"  {(e.IsError == true ? "✗" : "←")} {Shorten(e.Text)}",
                "result" => $"{(e.IsError == true ? "✗" : "✓")} {e.Text}{Totals(e)}",
                "output" => e.Text,
                "system" => $"· {e.Text}",
                "permission_request" => $"? asks to use {e.Tool}: {Summary(e.Input)}",
                _ => null,
            };
            if (text is not null)
            {
                output.WriteLine(text);
            }
        }
        WriteNotes();
    }

    private static string Totals(AgentEvent e) =>
        e.CostUsd is null ? "" : $"  (${e.CostUsd:0.0000}, {e.InputTokens} in / {e.OutputTokens} out tokens)";

    private static string Summary(JsonElement? input)
    {
        if (input is not { ValueKind: JsonValueKind.Object } o)
        {
            return "";
        }
        foreach (var key in (string[])["command", "file_path", "path", "pattern", "url", "description"])
        {
            if (o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String)
            {
                return Shorten(v.GetString());
            }
        }
        return Shorten(o.GetRawText());
    }

    private static string Shorten(string? text)
    {
        var flat = (text ?? "").ReplaceLineEndings(" ⏎ ");
        return flat.Length <= 200 ? flat : flat[..200] + "…";
    }

    public static byte[] Decode(AgentOutputMessage message) =>
        message.Encoding == "base64" ? Convert.FromBase64String(message.Data) : Encoding.UTF8.GetBytes(message.Data);
}
