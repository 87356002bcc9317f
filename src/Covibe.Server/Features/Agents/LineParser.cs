using System.Buffers;
using Covibe.Protocol;

namespace Covibe.Server.Features.Agents;

/// <summary>Receives one complete line (with its newline, if it had one) and where it starts.</summary>
public delegate void LineHandler(ReadOnlySpan<byte> line, long position);

/// <summary>
/// Splits a byte stream that arrives in arbitrary pieces into lines. Lines longer than a limit
/// are skipped (they are still in the raw output; only line-wise consumers miss them).
/// </summary>
public sealed class LineSplitter(int maxLineBytes = 4 * 1024 * 1024)
{
    private readonly ArrayBufferWriter<byte> _line = new();
    private long _lineStart;
    private long _position;
    private bool _overlong;

    public void Feed(ReadOnlySpan<byte> data, LineHandler onLine)
    {
        while (!data.IsEmpty)
        {
            if (_line.WrittenCount == 0 && !_overlong)
            {
                _lineStart = _position;
            }
            var newline = data.IndexOf((byte)'\n');
            var part = newline < 0 ? data : data[..(newline + 1)];
            if (!_overlong && _line.WrittenCount + part.Length <= maxLineBytes)
            {
                _line.Write(part);
            }
            else
            {
                _overlong = true;
                _line.Clear();
            }
            _position += part.Length;
            data = data[part.Length..];
            if (newline >= 0)
            {
                if (!_overlong)
                {
                    onLine(_line.WrittenSpan, _lineStart);
                }
                _line.Clear();
                _overlong = false;
            }
        }
    }

    /// <summary>Hands over a last line that never got its newline (the stream has ended).</summary>
    public void Flush(LineHandler onLine)
    {
        if (_line.WrittenCount > 0 && !_overlong)
        {
            onLine(_line.WrittenSpan, _lineStart);
        }
        _line.Clear();
        _overlong = false;
    }
}

/// <summary>Keeps what an agent reported in its stream-json (model, cost, tokens) as its output goes by.</summary>
public sealed class LineParser
{
    private readonly LineSplitter _lines = new();
    private readonly List<AgentEvent> _prompts = [];
    private bool _sawResult;

    public string? Model { get; private set; }
    public double? CostUsd { get; private set; }
    public long? InputTokens { get; private set; }
    public long? OutputTokens { get; private set; }
    /// <summary>What its last <c>result</c> said (its final summary), cut at <see cref="MaxSummaryLength"/> characters.</summary>
    public string? Summary { get; private set; }

    public const int MaxSummaryLength = 4000;

    /// <summary>Its last <c>result</c> was an error, saying <see cref="LastError"/>.</summary>
    public bool LastResultFailed { get; private set; }
    public string? LastError { get; private set; }

    /// <summary>Feeds the next bytes of output; returns true when a result (with cost) went by.</summary>
    public bool Feed(ReadOnlySpan<byte> data)
    {
        _sawResult = false;
        _lines.Feed(data, Observe);
        return _sawResult;
    }

    /// <summary>The permission prompts (and their cancellations) that went by since the last call, in order.</summary>
    public AgentEvent[] TakePrompts()
    {
        if (_prompts.Count == 0)
        {
            return [];
        }
        AgentEvent[] prompts = [.. _prompts];
        _prompts.Clear();
        return prompts;
    }

    /// <summary>Takes in a last line without a newline, once the output has ended.</summary>
    public void Flush() => _lines.Flush(Observe);

    private void Observe(ReadOnlySpan<byte> line, long position)
    {
        foreach (var e in StreamJson.Parse(line, position))
        {
            if (e.Kind is "permission_request" or "permission_cancel" && e.RequestId is not null)
            {
                _prompts.Add(e);
            }
            if (e.Model is not null)
            {
                Model = e.Model;
            }
            if (e.Kind == "result")
            {
                CostUsd = e.CostUsd ?? CostUsd;
                InputTokens = e.InputTokens ?? InputTokens;
                OutputTokens = e.OutputTokens ?? OutputTokens;
                LastResultFailed = e.IsError == true;
                LastError = LastResultFailed ? e.Text is { Length: > 500 } t ? t[..500] : e.Text : null;
                if (e.IsError != true && !string.IsNullOrWhiteSpace(e.Text))
                {
                    Summary = e.Text.Length <= MaxSummaryLength ? e.Text : e.Text[..MaxSummaryLength];
                }
                _sawResult = true;
            }
        }
    }
}
