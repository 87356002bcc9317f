using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Covibe.Server.Tests;

/// <summary>
/// The faithful fake <c>claude</c> speaks the permission protocol as the real CLI does (STREAM_JSON.md 7.3; issue 26, point
/// 5): it asks the host before Bash and Write unless allowed, waits, runs the tool with <c>updatedInput</c>, reports a denial
/// as an error tool_result and in <c>permission_denials</c>, ignores a second answer, cancels on an interrupt and fails the
/// call when stdin closes. Driven directly, as the server will drive it.
/// </summary>
public sealed class FakeClaudePermissionTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("covibe-fake-claude-").FullName;

    [Fact]
    public async Task ItAsksBeforeBashAndWrite_AnAllowRunsTheUpdatedInput_ADenyIsAnErrorAndADenial_ASecondAnswerIsIgnored()
    {
        await using var claude = Start();
        await claude.SendAsync(User("add notes [[write]] [[lines=1]]"));
        var bash = await claude.ReceiveAsync(m => IsPrompt(m, "Bash"));
        bash["request_id"]!.GetValue<string>().Length.ShouldBe(36);
        bash["request"]!["permission_suggestions"]![0]!["rules"]![0]!["ruleContent"]!.GetValue<string>().ShouldBe("npm test");
        await claude.SendAsync(Answer(bash, new JsonObject { ["behavior"] = "deny", ["message"] = "Not on this machine." }));
        await claude.SendAsync(Answer(bash, new JsonObject { ["behavior"] = "allow" }));
        var denied = await claude.ReceiveAsync(m => m["type"]!.GetValue<string>() == "user");
        denied["message"]!["content"]![0]!["is_error"]!.GetValue<bool>().ShouldBeTrue();
        denied["message"]!["content"]![0]!["content"]!.GetValue<string>().ShouldBe("Not on this machine.");

        var writeRequest = await claude.ReceiveAsync(m => IsPrompt(m, "Write"));
        var input = writeRequest["request"]!["input"]!.DeepClone().AsObject();
        input["content"] = "what the owner wrote\n";
        await claude.SendAsync(Answer(writeRequest, new JsonObject { ["behavior"] = "allow", ["updatedInput"] = input }));
        var result = await claude.ReceiveAsync(m => m["type"]!.GetValue<string>() == "result");
        result["subtype"]!.GetValue<string>().ShouldBe("success");
        result["permission_denials"]!.AsArray().Select(d => d!["tool_name"]!.GetValue<string>()).ShouldBe(["Bash"]);
        (await File.ReadAllTextAsync(Path.Combine(_directory, "notes.txt"))).ShouldBe("what the owner wrote\n");
        claude.Received.Count(m => m["type"]!.GetValue<string>() == "user").ShouldBe(2, "one tool_result per call, the second answer ignored");
    }

    [Fact]
    public async Task WhatItIsAllowedRunsWithoutAsking_AndASessionRuleFromAnAnswerHoldsForTheNextTurn()
    {
        await using (var allowed = Start("--allowedTools", "Bash"))
        {
            await allowed.SendAsync(User("test it [[lines=1]]"));
            (await allowed.ReceiveAsync(m => m["type"]!.GetValue<string>() == "result"))["subtype"]!.GetValue<string>().ShouldBe("success");
            allowed.Received.ShouldNotContain(m => m["type"]!.GetValue<string>() == "control_request");
        }

        await using var claude = Start();
        await claude.SendAsync(User("first [[lines=1]]"));
        var prompt = await claude.ReceiveAsync(m => IsPrompt(m, "Bash"));
        await claude.SendAsync(Answer(prompt, new JsonObject
        {
            ["behavior"] = "allow",
            ["updatedPermissions"] = new JsonArray(new JsonObject
            {
                ["type"] = "addRules", ["behavior"] = "allow", ["destination"] = "session",
                ["rules"] = new JsonArray(new JsonObject { ["toolName"] = "Bash", ["ruleContent"] = "npm test" }),
            }),
        }));
        await claude.ReceiveAsync(m => m["type"]!.GetValue<string>() == "result");
        await claude.SendAsync(User("second [[lines=1]]"));
        await claude.ReceiveAsync(m => m["type"]!.GetValue<string>() == "result" && m["num_turns"]!.GetValue<int>() == 2);
        claude.Received.Count(m => m["type"]!.GetValue<string>() == "control_request").ShouldBe(1);
    }

    [Fact]
    public async Task AnInterruptWhileItAsks_CancelsTheRequest_AndStdinClosingFailsTheCall()
    {
        await using (var claude = Start())
        {
            await claude.SendAsync(User("wait for me [[lines=1]]"));
            var prompt = await claude.ReceiveAsync(m => IsPrompt(m, "Bash"));
            await claude.SendAsync(new JsonObject { ["type"] = "control_request", ["request_id"] = "req_1_interrupt", ["request"] = new JsonObject { ["subtype"] = "interrupt" } });
            (await claude.ReceiveAsync(m => m["type"]!.GetValue<string>() == "control_cancel_request"))["request_id"]!.GetValue<string>()
                .ShouldBe(prompt["request_id"]!.GetValue<string>());
            var result = await claude.ReceiveAsync(m => m["type"]!.GetValue<string>() == "result");
            (result["subtype"]!.GetValue<string>(), result["terminal_reason"]!.GetValue<string>()).ShouldBe(("error_during_execution", "aborted_tools"));
        }

        await using var closing = Start();
        await closing.SendAsync(User("nobody answers [[lines=1]]"));
        await closing.ReceiveAsync(m => IsPrompt(m, "Bash"));
        closing.CloseInput();
        var failed = await closing.ReceiveAsync(m => m["type"]!.GetValue<string>() == "user");
        failed["message"]!["content"]![0]!["content"]!.GetValue<string>().ShouldStartWith("Tool permission request failed");
    }

    private static bool IsPrompt(JsonNode m, string tool) =>
        m["type"]!.GetValue<string>() == "control_request" && m["request"]!["subtype"]!.GetValue<string>() == "can_use_tool"
        && m["request"]!["tool_name"]!.GetValue<string>() == tool;

    private static JsonObject User(string text) =>
        new() { ["type"] = "user", ["message"] = new JsonObject { ["role"] = "user", ["content"] = text } };

    private static JsonObject Answer(JsonNode request, JsonObject decision) => new()
    {
        ["type"] = "control_response",
        ["response"] = new JsonObject { ["subtype"] = "success", ["request_id"] = request["request_id"]!.GetValue<string>(), ["response"] = decision },
    };

    private FakeClaude Start(params string[] extra) => new(_directory,
        ["--output-format", "stream-json", "--verbose", "--input-format", "stream-json", "--permission-prompt-tool", "stdio", .. extra]);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>The fake as a process: what it prints, a JSON line at a time; what to send it.</summary>
    private sealed class FakeClaude : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly Channel<JsonNode> _lines = Channel.CreateUnbounded<JsonNode>();

        public FakeClaude(string directory, string[] args)
        {
            var info = new ProcessStartInfo(Path.Combine(ClaudeServerFixture.FakeDirectory, "claude"))
            {
                WorkingDirectory = directory, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            };
            foreach (var arg in args)
            {
                info.ArgumentList.Add(arg);
            }
            _process = Process.Start(info)!;
            _ = Task.Run(async () =>
            {
                while (await _process.StandardOutput.ReadLineAsync() is { } line)
                {
                    _lines.Writer.TryWrite(JsonNode.Parse(line)!);
                }
                _lines.Writer.TryComplete();
            });
        }

        public List<JsonNode> Received { get; } = [];

        public async Task SendAsync(JsonObject message)
        {
            await _process.StandardInput.WriteLineAsync(message.ToJsonString());
            await _process.StandardInput.FlushAsync();
        }

        public void CloseInput() => _process.StandardInput.Close();

        public async Task<JsonNode> ReceiveAsync(Func<JsonNode, bool> match)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (true)
            {
                var line = await _lines.Reader.ReadAsync(timeout.Token);
                Received.Add(line);
                if (match(line))
                {
                    return line;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }
}
