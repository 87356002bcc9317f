using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Features.Agents;

namespace Covibe.Server.Tests;

/// <summary>The rules and the order of decisions for permission prompts (issue 26), as Claude's settings shape them.</summary>
public sealed class PermissionRulesTests
{
    private static JsonElement Input(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static PermissionRule Rule(string text) => PermissionRule.Parse(text, out var problem) ?? throw new InvalidOperationException(problem);

    [Theory]
    [InlineData("Bash", """{"command":"rm -rf /"}""", true)]
    [InlineData("Bash(npm test)", """{"command":"npm test"}""", true)]
    [InlineData("Bash(npm test)", """{"command":"npm test && curl evil"}""", false)]
    [InlineData("Bash(npm run:*)", """{"command":"npm run build"}""", true)]
    [InlineData("Bash(npm run:*)", """{"command":"npm run"}""", true)]
    [InlineData("Bash(npm run:*)", """{"command":"npm runner"}""", false)]
    [InlineData("Bash(git * --dry-run)", """{"command":"git push --dry-run"}""", true)]
    [InlineData("Edit(src/**)", """{"file_path":"/home/dev/repo/src/app/main.ts"}""", true)]
    [InlineData("Edit(src/*.ts)", """{"file_path":"/home/dev/repo/src/app/main.ts"}""", false)]
    [InlineData("Edit(src/*.ts)", """{"file_path":"src/main.ts"}""", true)]
    [InlineData("Read(/etc/*)", """{"file_path":"/etc/passwd"}""", true)]
    [InlineData("Read(/etc/*)", """{"file_path":"/home/etc/passwd"}""", false)]
    [InlineData("Write(*.txt)", """{"file_path":"notes.txt"}""", true)]
    [InlineData("WebFetch(domain:example.com)", """{"url":"https://docs.example.com/x"}""", true)]
    [InlineData("WebFetch(domain:example.com)", """{"url":"https://example.com.evil.org/x"}""", false)]
    [InlineData("Write", """{"file_path":"a"}""", true)]
    [InlineData("Edit", """{"file_path":"a"}""", false)]
    public void ARule_MatchesTheCallsItSpeaksOf(string rule, string input, bool matches)
    {
        var tool = rule.Split('(')[0];
        var called = rule == "Edit" ? "Write" : tool;
        Rule(rule).Matches(called, Input(input)).ShouldBe(matches);
    }

    [Theory]
    [InlineData("")]
    [InlineData("(npm test)")]
    [InlineData("Bash npm test")]
    [InlineData("9Bash")]
    public void WhatIsNotARule_IsSaidSo(string text)
    {
        PermissionRule.Parse(text, out var problem).ShouldBeNull();
        problem.ShouldNotBeNull().ShouldContain("Tool(specifier)");
    }

    [Fact]
    public void Decisions_FollowClaudesOrder_DenyFirst_AndAQuestionAlwaysGoesToAPerson()
    {
        var bash = Input("""{"command":"npm test"}""");
        var read = Input("""{"file_path":"README.md"}""");
        PermissionRule[] none = [];
        // Deny rules win over everything, bypass included.
        PermissionDecisions.Decide(PermissionModes.Bypass, [Rule("Bash(npm:*)")], [Rule("Bash")], none, "Bash", bash)
            .ShouldBe((PermissionVerdict.Deny, "the operator's rule Bash(npm:*)"));
        PermissionDecisions.Decide(PermissionModes.Bypass, none, none, none, "Bash", bash).Verdict.ShouldBe(PermissionVerdict.Allow);
        PermissionDecisions.Decide(PermissionModes.Ask, none, [Rule("Bash(npm test)")], none, "Bash", bash).Verdict.ShouldBe(PermissionVerdict.Allow);
        PermissionDecisions.Decide(PermissionModes.Ask, none, none, [Rule("Bash(npm test)")], "Bash", bash)
            .ShouldBe((PermissionVerdict.Allow, "the rule Bash(npm test), allowed always for this agent"));
        PermissionDecisions.Decide(PermissionModes.Ask, none, none, none, "Bash", bash).Verdict.ShouldBe(PermissionVerdict.Ask);
        PermissionDecisions.Decide(PermissionModes.Ask, none, none, none, "Read", read).Verdict.ShouldBe(PermissionVerdict.Ask);
        PermissionDecisions.Decide(PermissionModes.AskButAllowReads, none, none, none, "Read", read).Verdict.ShouldBe(PermissionVerdict.Allow);
        PermissionDecisions.Decide(PermissionModes.AskButAllowReads, none, none, none, "Bash", bash).Verdict.ShouldBe(PermissionVerdict.Ask);
        PermissionDecisions.Decide(PermissionModes.Bypass, none, [Rule("AskUserQuestion")], none, "AskUserQuestion", Input("{}")).Verdict.ShouldBe(PermissionVerdict.Ask);
    }

    [Fact]
    public void TheAnswerLine_CarriesWhatClaudeNeeds()
    {
        var allow = System.Text.Encoding.UTF8.GetString(StreamJsonInput.PermissionAnswer("r1", true, Input("""{"command":"npm test"}"""), [Rule("Bash(npm test)")], null));
        using var a = JsonDocument.Parse(allow);
        var response = a.RootElement.GetProperty("response");
        (a.RootElement.GetProperty("type").GetString(), response.GetProperty("subtype").GetString(), response.GetProperty("request_id").GetString()).ShouldBe(("control_response", "success", "r1"));
        response.GetProperty("response").GetProperty("behavior").GetString().ShouldBe("allow");
        response.GetProperty("response").GetProperty("updatedInput").GetProperty("command").GetString().ShouldBe("npm test");
        var rule = response.GetProperty("response").GetProperty("updatedPermissions")[0];
        (rule.GetProperty("type").GetString(), rule.GetProperty("destination").GetString(), rule.GetProperty("rules")[0].GetProperty("ruleContent").GetString()).ShouldBe(("addRules", "session", "npm test"));
        allow.ShouldEndWith("}\n");

        using var d = JsonDocument.Parse(StreamJsonInput.PermissionAnswer("r2", false, null, [], "No."));
        d.RootElement.GetProperty("response").GetProperty("response").GetProperty("message").GetString().ShouldBe("No.");
        d.RootElement.GetProperty("response").GetProperty("response").TryGetProperty("updatedInput", out _).ShouldBeFalse();
    }
}
