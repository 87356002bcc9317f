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
/// interrupted turn. With <c>--permission-prompt-tool stdio</c> it asks its host before writing a file, as Claude does
/// (STREAM_JSON.md 7.3): a <c>can_use_tool</c> control request, then it waits, however long, for the answer on stdin; it
/// writes with the <c>updatedInput</c> allowed, or reports the denial as Claude does.
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
        var promptTool = new Option<string?>("--permission-prompt-tool") { Description = "stdio: ask the host before writing a file (Claude's control protocol)" };
        var mode = new Option<string?>("--permission-mode") { Description = "bypassPermissions or acceptEdits: write without asking" };
        var command = new Command("mock-agent", "Run the built-in mock agent (what USE_MOCK_AGENTS=true spawns)") { task, kind, delay, fail, steps, promptTool, mode };
        command.Hidden = true;
        // The mock handles SIGINT itself (an interrupted turn, like Claude's), so the command-line
        // library's cancellation on Ctrl-C is not passed on.
        command.SetAction(async (parse, _) =>
            await RunAsync(parse.GetValue(task)!, parse.GetValue(kind)!, parse.GetValue(delay), parse.GetValue(fail), parse.GetValue(steps),
                parse.GetValue(promptTool) == "stdio" && parse.GetValue(mode) is not ("bypassPermissions" or "acceptEdits"), CancellationToken.None));
        return command;
    }

    private static async Task<int> RunAsync(string task, string kind, int delayMs, string? fail, int steps, bool asksHost, CancellationToken cancellationToken)
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
        var host = new HostAnswers();
        var denials = new JsonArray();
        // Not awaited: a read blocked on stdin must not keep the agent from finishing.
        _ = ReadInputAsync(inputs.Writer, host, interrupted);

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
                ["permission_denials"] = denials.DeepClone(),
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
                    var input = new JsonObject { ["file_path"] = file, ["content"] = $"export const step{step} = true;\n" };
                    await Emit(Assistant([new JsonObject { ["type"] = "tool_use", ["id"] = id, ["name"] = "Write", ["input"] = input.DeepClone() }]));
                    await Pause();
                    string result;
                    var failed = false;
                    var answer = asksHost ? await AskAsync(Emit, host, interrupted, "Write", input, id) : (Allowed: true, Input: input, Message: (string?)null);
                    if (!answer.Allowed)
                    {
                        // As Claude reports a denial: the tool does not run, its result is an error carrying the message.
                        (result, failed) = (answer.Message ?? "Permission to use Write has been denied.", true);
                        denials.Add(new JsonObject { ["tool_name"] = "Write", ["tool_use_id"] = id, ["tool_input"] = input.DeepClone() });
                    }
                    else
                    {
                        // It really writes the file (in its working directory), as Claude's Write does, with what was allowed.
                        file = answer.Input["file_path"]?.GetValue<string>() ?? file;
                        try
                        {
                            if (Path.GetDirectoryName(file) is { Length: > 0 } directory)
                            {
                                Directory.CreateDirectory(directory);
                            }
                            await File.WriteAllTextAsync(file, answer.Input["content"]?.GetValue<string>() ?? "", cancellationToken);
                            result = $"File created successfully at: {file}";
                            written.Add(file);
                        }
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                        {
                            (result, failed) = ($"Error writing {file}: {e.Message}", true);
                        }
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

    /// <summary>
    /// Asks the host (a <c>can_use_tool</c> control request) and waits for its answer with no timer, as Claude does; an
    /// interrupt withdraws the request (<c>control_cancel_request</c>), and stdin closing fails it.
    /// </summary>
    private static async Task<(bool Allowed, JsonObject Input, string? Message)> AskAsync(
        Func<JsonObject, Task> emit, HostAnswers host, CancellationTokenSource interrupted, string tool, JsonObject input, string toolUseId)
    {
        var requestId = Guid.NewGuid().ToString();
        var answer = host.Expect(requestId);
        await emit(new JsonObject
        {
            ["type"] = "control_request",
            ["request_id"] = requestId,
            ["request"] = new JsonObject
            {
                ["subtype"] = "can_use_tool", ["tool_name"] = tool, ["input"] = input.DeepClone(), ["tool_use_id"] = toolUseId,
                ["permission_suggestions"] = new JsonArray(new JsonObject { ["type"] = "setMode", ["mode"] = "acceptEdits", ["destination"] = "session" }),
                ["display_name"] = tool, ["description"] = $"{tool} {input["file_path"]}",
            },
        });
        try
        {
            var reply = await answer.WaitAsync(interrupted.Token);
            if (reply is null)
            {
                return (false, input, "Tool permission request failed: AbortError: Tool permission stream closed before response received");
            }
            return reply["behavior"]?.GetValue<string>() == "allow"
                ? (true, reply["updatedInput"] as JsonObject ?? input, null)
                : (false, input, reply["message"]?.GetValue<string>() ?? "Permission denied.");
        }
        catch (OperationCanceledException)
        {
            await emit(new JsonObject { ["type"] = "control_cancel_request", ["request_id"] = requestId });
            throw;
        }
    }

    /// <summary>Answers to the requests still open, by request id (a second answer to one is ignored, as Claude does).</summary>
    private sealed class HostAnswers
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource<JsonObject?>> _open = new();

        public Task<JsonObject?> Expect(string requestId) =>
            _open.GetOrAdd(requestId, _ => new TaskCompletionSource<JsonObject?>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

        public void Answer(string requestId, JsonObject? response)
        {
            if (_open.TryRemove(requestId, out var waiting))
            {
                waiting.TrySetResult(response);
            }
        }

        /// <summary>stdin closed: every open request fails.</summary>
        public void Closed()
        {
            foreach (var id in _open.Keys)
            {
                Answer(id, null);
            }
        }
    }

    private static async Task ReadInputAsync(System.Threading.Channels.ChannelWriter<string> inputs, HostAnswers host, CancellationTokenSource interrupted)
    {
        using var stdin = new StreamReader(Console.OpenStandardInput());
        while (await stdin.ReadLineAsync() is { } line)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            var node = Json(line);
            var type = node?["type"]?.GetValue<string>();
            var response = type == "control_response" ? node!["response"] : null;
            if (response?["request_id"]?.GetValue<string>() is { } id)
            {
                host.Answer(id, response["response"] as JsonObject);
            }
            else if (type == "control_request" && node!["request"]?["subtype"]?.GetValue<string>() == "interrupt")
            {
                // The host's interrupt: like Ctrl-C, the turn ends as interrupted.
                await interrupted.CancelAsync();
            }
            else if (type != "control_response")
            {
                inputs.TryWrite(InputText(line));
            }
        }
        host.Closed();
    }

    private static JsonNode? Json(string line)
    {
        try
        {
            return line.StartsWith('{') ? JsonNode.Parse(line) : null;
        }
        catch (JsonException)
        {
            return null;
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
