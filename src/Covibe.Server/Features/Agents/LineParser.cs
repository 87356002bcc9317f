using System.Buffers;
using Covibe.Protocol;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Splits an agent's output bytes into lines and parses each as stream-json, keeping what the
/// agent reported (model, cost, tokens). Lines longer than a limit are skipped for parsing only;
/// the raw output is untouched.
/// </summary>
public sealed class LineParser(int maxLineBytes = 4 * 1024 * 1024)
{
    private readonly ArrayBufferWriter<byte> _line = new();
    private long _lineStart;
    private bool _overlong;

    public string? Model { get; private set; }
    public double? CostUsd { get; private set; }
    public long? InputTokens { get; private set; }
    public long? OutputTokens { get; private set; }

    /// <summary>Feeds bytes that start at <paramref name="position"/>; returns true when a result (cost) was seen.</summary>
    public bool Feed(ReadOnlySpan<byte> data, long position)
    {
        var sawResult = false;
        while (!data.IsEmpty)
        {
            if (_line.WrittenCount == 0 && !_overlong)
            {
                _lineStart = position;
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
            position += part.Length;
            data = data[part.Length..];
            if (newline >= 0)
            {
                if (!_overlong)
                {
                    sawResult |= Observe(_line.WrittenSpan, _lineStart);
                }
                _line.Clear();
                _overlong = false;
            }
        }
        return sawResult;
    }

    private bool Observe(ReadOnlySpan<byte> line, long position)
    {
        var sawResult = false;
        foreach (var e in StreamJson.Parse(line, position))
        {
            if (e.Model is not null)
            {
                Model = e.Model;
            }
            if (e.Kind == "result")
            {
                CostUsd = e.CostUsd ?? CostUsd;
                InputTokens = e.InputTokens ?? InputTokens;
                OutputTokens = e.OutputTokens ?? OutputTokens;
                sawResult = true;
            }
        }
        return sawResult;
    }
}
