using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Covibe.Cli;

/// <summary>
/// Seed 000's mock agent: realistic, progressive Claude Code stream-json output with no external
/// CLI, for demos and development (<c>USE_MOCK_AGENTS=true</c>). Two response kinds (general,
/// code-writer), configurable timing, and failure scenarios. Lines arriving on stdin while it
/// works are acknowledged (plain text or stream-json user messages); SIGINT ends it as an
/// interrupted turn.
/// </summary>
internal static class MockAgent
{
    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "The task to pretend to work on", Required = true };
        var kind = new Option<string>("--kind") { Description = "general or code-writer", DefaultValueFactory = _ => "general" };
        var delay = new Option<int>("--delay-ms") { Description = "Pause between events", DefaultValueFactory = _ => 150 };
        var fail = new Option<string?>("--fail") { Description = "Failure scenario: error (error result, exit 1) or crash (dies mid-line, exit 3)" };
        var steps = new Option<int>("--steps") { Description = "How many work steps to stream", DefaultValueFactory = _ => 4 };
        var command = new Command("mock-agent", "Run the built-in mock agent (what USE_MOCK_AGENTS=true spawns)") { task, kind, delay, fail, steps };
        command.Hidden = true;
        // The mock handles SIGINT itself (an interrupted turn, like Claude's), so the command-line
        // library's cancellation on Ctrl-C is not passed on.
        command.SetAction(async (parse, _) =>
            await RunAsync(parse.GetValue(task)!, parse.GetValue(kind)!, parse.GetValue(delay), parse.GetValue(fail), parse.GetValue(steps), CancellationToken.None));
        return command;
    }

    private static async Task<int> RunAsync(string task, string kind, int delayMs, string? fail, int steps, CancellationToken cancellationToken)
    {
        // Demo knobs in the task itself, so a failure can be shown from any client.
        fail ??= task.Contains("#crash", StringComparison.OrdinalIgnoreCase) ? "crash"
            : task.Contains("#fail", StringComparison.OrdinalIgnoreCase) ? "error"
            : null;
        var session = Guid.NewGuid().ToString();
        var started = TimeProvider.System.GetTimestamp();
        using var interrupted = new CancellationTokenSource();
        using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            interrupted.Cancel();
        });
        var output = Console.OpenStandardOutput();
        var turns = 0;
        var inputs = System.Threading.Channels.Channel.CreateUnbounded<string>();
        // Not awaited: a read blocked on stdin must not keep the agent from finishing.
        _ = ReadInputAsync(inputs.Writer);

        async Task Emit(JsonObject line)
        {
            line["session_id"] = session;
            line["uuid"] = Guid.NewGuid().ToString();
            var bytes = JsonSerializer.SerializeToUtf8Bytes(line);
            await output.WriteAsync(bytes, cancellationToken);
            await output.WriteAsync("\n"u8.ToArray(), cancellationToken);
            await output.FlushAsync(cancellationToken);
        }

        JsonObject Assistant(JsonArray content) => new()
        {
            ["type"] = "assistant",
            ["message"] = new JsonObject
            {
                ["id"] = "msg_mock_" + Guid.NewGuid().ToString("N")[..12],
                ["type"] = "message",
                ["role"] = "assistant",
                ["model"] = "covibe-mock-1",
                ["content"] = content,
                ["stop_reason"] = null,
                ["usage"] = new JsonObject { ["input_tokens"] = 12, ["output_tokens"] = 24 },
            },
            ["parent_tool_use_id"] = null,
        };

        JsonObject Text(string text) => Assistant([new JsonObject { ["type"] = "text", ["text"] = text }]);

        async Task Pause()
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, interrupted.Token);
            await Task.Delay(delayMs, linked.Token);
            while (inputs.Reader.TryRead(out var input))
            {
                await Emit(Text($"Received input: {input}"));
            }
        }

        async Task<int> Result(bool error, string subtype, string text)
        {
            turns++;
            await Emit(new JsonObject
            {
                ["type"] = "result",
                ["subtype"] = subtype,
                ["is_error"] = error,
                ["duration_ms"] = (int)TimeProvider.System.GetElapsedTime(started).TotalMilliseconds,
                ["duration_api_ms"] = 0,
                ["num_turns"] = turns,
                ["result"] = text,
                ["total_cost_usd"] = 0.0123 * turns,
                ["usage"] = new JsonObject { ["input_tokens"] = 120 * turns, ["output_tokens"] = 480 * turns },
                ["permission_denials"] = new JsonArray(),
            });
            return error ? 1 : 0;
        }

        await Emit(new JsonObject
        {
            ["type"] = "system",
            ["subtype"] = "init",
            ["cwd"] = Environment.CurrentDirectory,
            ["model"] = "covibe-mock-1",
            ["tools"] = new JsonArray("Bash", "Read", "Edit", "Write"),
            ["mcp_servers"] = new JsonArray(),
            ["permissionMode"] = "bypassPermissions",
            ["apiKeySource"] = "none",
        });
        try
        {
            await Emit(Text($"I'll work on: {task}"));
            var written = new List<string>();
            for (var step = 1; step <= steps; step++)
            {
                await Pause();
                if (kind == "code-writer" && step % 2 == 0)
                {
                    var id = "toolu_mock_" + step.ToString(CultureInfo.InvariantCulture);
                    var file = $"src/step{step}.ts";
                    await Emit(Assistant([new JsonObject
                    {
                        ["type"] = "tool_use", ["id"] = id, ["name"] = "Write",
                        ["input"] = new JsonObject { ["file_path"] = file, ["content"] = $"export const step{step} = true;\n" },
                    }]));
                    await Pause();
                    // It really writes the file (in its working directory), as Claude's Write does: the team sees it in the agent's changes.
                    string result;
                    var failed = false;
                    try
                    {
                        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                        await File.WriteAllTextAsync(file, $"export const step{step} = true;\n", cancellationToken);
                        result = $"File created successfully at: {file}";
                        written.Add(file);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        (result, failed) = ($"Error writing {file}: {e.Message}", true);
                    }
                    await Emit(new JsonObject
                    {
                        ["type"] = "user",
                        ["message"] = new JsonObject
                        {
                            ["role"] = "user",
                            ["content"] = new JsonArray(new JsonObject { ["type"] = "tool_result", ["tool_use_id"] = id, ["content"] = result, ["is_error"] = failed }),
                        },
                        ["parent_tool_use_id"] = null,
                    });
                }
                else
                {
                    await Emit(Text($"Step {step} of {steps}: {(kind == "code-writer" ? "reading the code around the change" : "thinking it through")}..."));
                }
                if (fail == "crash" && step == Math.Max(1, steps / 2))
                {
                    await output.WriteAsync("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"te"u8.ToArray(), cancellationToken);
                    await output.FlushAsync(cancellationToken);
                    return 3;
                }
            }
            if (fail == "error")
            {
                return await Result(true, "error_during_execution", "The mock agent failed on purpose (--fail error).");
            }
            await Result(false, "success", written.Count == 0 ? $"Done: {task}" : $"Done: {task}\n\nWrote {string.Join(", ", written)}.");
            return 0;
        }
        catch (OperationCanceledException) when (interrupted.IsCancellationRequested)
        {
            await Result(true, "error_during_execution", "Interrupted.");
            return 130;
        }
    }

    private static async Task ReadInputAsync(System.Threading.Channels.ChannelWriter<string> inputs)
    {
        using var stdin = new StreamReader(Console.OpenStandardInput());
        while (await stdin.ReadLineAsync() is { } line)
        {
            if (!string.IsNullOrWhiteSpace(line))
            {
                inputs.TryWrite(InputText(line));
            }
        }
    }

    /// <summary>A stream-json user message's text, or the raw line.</summary>
    private static string InputText(string line)
    {
        try
        {
            var node = JsonNode.Parse(line);
            if (node?["message"]?["content"] is JsonValue value)
            {
                return value.GetValue<string>();
            }
        }
        catch (JsonException)
        {
        }
        return line;
    }
}
