using System.CommandLine;
using System.Globalization;
using Covibe.Protocol;
using Spectre.Console;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe agent approvals|approve|deny|give|take-back|ask-control|take-over|actions</c>: steering agents together from the
/// terminal (issue 26): their permission prompts, who controls them, who did what.
/// </summary>
internal static class AgentSteeringCommands
{
    public static IEnumerable<Command> Create(CredentialStore store) =>
        [List(store), Approve(store), Deny(store), Give(store), TakeBack(store), Simple(store, "ask-control", "Ask the agent's owner to let you control it", "control/ask", "Asked; its owner is told."),
         Simple(store, "take-over", "Take a member's agent over (the team's owner)", "control/take-over", "You control the agent now."), Actions(store)];

    private static Command Give(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var member = new Argument<string?>("member") { Description = "A teammate's name or id", Arity = ArgumentArity.ZeroOrOne };
        var team = new Option<bool>("--team") { Description = "Give control to the whole team" };
        var command = new Command("give", "Hand your agent to a teammate (or the whole team): they control it beside you") { id, member, team };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(id)!, ct);
            var request = parse.GetValue(team) ? new GrantControlRequest(WholeTeam: true)
                : new GrantControlRequest(await MemberAsync(client, parse.GetValue(member) ?? throw new CliException("Name a teammate, or give --team."), ct));
            var controllers = await client.PostAsync($"api/agent/{agentId}/control", request, CovibeJsonContext.Default.GrantControlRequest, CovibeJsonContext.Default.AgentControllersResponse, ct);
            Console.WriteLine($"Controlled by {Controllers(controllers)}.");
        });
        return command;
    }

    private static Command TakeBack(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var member = new Argument<string?>("member") { Description = "The teammate's name or id (yourself: give it back)", Arity = ArgumentArity.ZeroOrOne };
        var team = new Option<bool>("--team") { Description = "From the whole team" };
        var command = new Command("take-back", "Take control of your agent back from a teammate or the team (or give back one handed to you)") { id, member, team };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(id)!, ct);
            var userId = parse.GetValue(team) ? "*" : await MemberAsync(client, parse.GetValue(member) ?? throw new CliException("Name the teammate, or give --team."), ct);
            var controllers = await client.DeleteAsync($"api/agent/{agentId}/control/{Uri.EscapeDataString(userId)}", CovibeJsonContext.Default.AgentControllersResponse, ct);
            Console.WriteLine($"Controlled by {Controllers(controllers)}.");
        });
        return command;
    }

    private static Command Simple(CredentialStore store, string name, string description, string path, string done)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var command = new Command(name, description) { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(id)!, ct);
            await client.PostAsync($"api/agent/{agentId}/{path}", CovibeJsonContext.Default.AgentControllersResponse, ct);
            Console.WriteLine(done);
        });
        return command;
    }

    private static Command Actions(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var command = new Command("actions", "Who did what to an agent: inputs, approvals, denials, interrupts, handovers") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(id)!, ct);
            var list = await client.GetAsync($"api/agent/{agentId}/actions", CovibeJsonContext.Default.AgentActionsResponse, ct);
            foreach (var a in list.Actions)
            {
                Console.WriteLine($"{a.At.ToLocalTime():HH:mm:ss}  {a.ByName ?? "Covibe"} {a.Text}");
            }
            if (list.Actions.Length == 0)
            {
                Console.WriteLine("Nobody has done anything to this agent yet.");
            }
        });
        return command;
    }

    /// <summary>A teammate's id from their name (case-insensitive) or a unique start of their id.</summary>
    internal static async Task<string> MemberAsync(CovibeClient client, string given, CancellationToken cancellationToken)
    {
        var team = await client.GetAsync("api/team", CovibeJsonContext.Default.TeamResponse, cancellationToken);
        var matches = team.Members.Where(m => m.Name.Equals(given, StringComparison.OrdinalIgnoreCase)).ToList();
        if (matches.Count == 0)
        {
            matches = [.. team.Members.Where(m => m.Id.StartsWith(given, StringComparison.OrdinalIgnoreCase))];
        }
        return matches.Count switch
        {
            1 => matches[0].Id,
            0 => throw new CliException($"No member of your team is called '{given}'. See `covibe team show`."),
            _ => throw new CliException($"'{given}' matches {matches.Count} members; give their id."),
        };
    }

    private static string Controllers(AgentControllersResponse c) =>
        string.Join(", ", [c.OwnerName, .. c.Controllers.Select(x => x.UserId == "*" ? "the whole team" : x.Name ?? x.UserId)]);

    private static Command List(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var command = new Command("approvals", "List an agent's permission requests: what it asked, and who answered") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(id)!, ct);
            var list = await client.GetAsync($"api/agent/{agentId}/approvals", CovibeJsonContext.Default.AgentPermissionsResponse, ct);
            if (list.Requests.Length == 0)
            {
                Console.WriteLine("The agent has asked nothing yet.");
                return;
            }
            var table = new Table().AddColumns(new TableColumn("Request").NoWrap(), new TableColumn("Asked").NoWrap(), new TableColumn("What"), new TableColumn("Answer"));
            foreach (var r in list.Requests)
            {
                table.AddRow(r.RequestId[..Math.Min(8, r.RequestId.Length)], r.AskedAt.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture),
                    Markup.Escape(PermissionText.Summary(r.Tool, r.Input)), Markup.Escape(Outcome(r)));
            }
            AnsiConsole.Write(table);
        });
        return command;
    }

    private static Command Approve(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var request = new Argument<string?>("request") { Description = "The request (a unique start of its id); the oldest waiting if left out", Arity = ArgumentArity.ZeroOrOne };
        var always = new Option<bool>("--always") { Description = "Allow this tool for this agent from now on" };
        var rule = new Option<int?>("--rule") { Description = "Allow from now on by the rule Claude suggested at this index (see `covibe agent approvals`), e.g. Bash(npm test)" };
        var answer = new Option<string?>("--answer") { Description = "Claude asked a question (AskUserQuestion): your choice (one of its options, or your own words)" };
        var command = new Command("approve", "Allow what an agent asked to do (or answer its question); it goes on at once") { id, request, always, rule, answer };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var (agentId, requestId) = await ResolveAsync(client, parse.GetValue(id)!, parse.GetValue(request), ct);
            System.Text.Json.JsonElement? updated = null;
            if (parse.GetValue(answer) is { } choice)
            {
                updated = await AnsweredAsync(client, agentId, requestId, choice, ct);
            }
            var answered = await client.PostAsync($"api/agent/{agentId}/approve", new ApproveRequest(requestId, parse.GetValue(always) ? true : null, parse.GetValue(rule), updated),
                CovibeJsonContext.Default.ApproveRequest, CovibeJsonContext.Default.AgentPermissionDto, ct);
            Console.WriteLine($"Allowed {PermissionText.Summary(answered.Tool, answered.Input)}{(answered.Always ? " (from now on)" : "")}.");
        });
        return command;
    }

    private static Command Deny(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var request = new Argument<string?>("request") { Description = "The request (a unique start of its id); the oldest waiting if left out", Arity = ArgumentArity.ZeroOrOne };
        var message = new Option<string?>("--message", "-m") { Description = "Why, or what to do instead: the agent reads it" };
        var command = new Command("deny", "Refuse what an agent asked to do; it reads your message and goes on") { id, request, message };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var (agentId, requestId) = await ResolveAsync(client, parse.GetValue(id)!, parse.GetValue(request), ct);
            var answered = await client.PostAsync($"api/agent/{agentId}/deny", new DenyRequest(requestId, parse.GetValue(message)),
                CovibeJsonContext.Default.DenyRequest, CovibeJsonContext.Default.AgentPermissionDto, ct);
            Console.WriteLine($"Denied {PermissionText.Summary(answered.Tool, answered.Input)}.");
        });
        return command;
    }

    /// <summary>The question's input with the answer to its (first) question, as Claude reads it back (<c>answers</c>: question to choice).</summary>
    private static async Task<System.Text.Json.JsonElement> AnsweredAsync(CovibeClient client, string agentId, string? requestId, string choice, CancellationToken cancellationToken)
    {
        var list = await client.GetAsync($"api/agent/{agentId}/approvals", CovibeJsonContext.Default.AgentPermissionsResponse, cancellationToken);
        var asked = list.Requests.FirstOrDefault(r => requestId is null ? r.Status == PermissionStatuses.Pending : r.RequestId == requestId)
            ?? throw new CliException("The agent is not waiting for an answer.");
        if (System.Text.Json.Nodes.JsonNode.Parse(asked.Input.GetRawText()) is not System.Text.Json.Nodes.JsonObject input
            || input["questions"] is not System.Text.Json.Nodes.JsonArray { Count: > 0 } questions || questions[0]?["question"]?.GetValue<string>() is not { } question)
        {
            throw new CliException($"That request is not a question ({asked.Tool}); approve or deny it without --answer.");
        }
        input["answers"] = new System.Text.Json.Nodes.JsonObject { [question] = choice };
        using var document = System.Text.Json.JsonDocument.Parse(input.ToJsonString());
        return document.RootElement.Clone();
    }

    private static async Task<(string AgentId, string? RequestId)> ResolveAsync(CovibeClient client, string agent, string? request, CancellationToken cancellationToken)
    {
        var agentId = await AgentCommands.ResolveAsync(client, agent, cancellationToken);
        if (request is null)
        {
            return (agentId, null);
        }
        var list = await client.GetAsync($"api/agent/{agentId}/approvals", CovibeJsonContext.Default.AgentPermissionsResponse, cancellationToken);
        var matches = list.Requests.Where(r => r.RequestId.StartsWith(request, StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.Count switch
        {
            1 => (agentId, matches[0].RequestId),
            0 => throw new CliException($"The agent has no request starting with '{request}'. See `covibe agent approvals {agent}`."),
            _ => throw new CliException($"'{request}' matches {matches.Count} requests; give more of the id."),
        };
    }

    private static string Outcome(AgentPermissionDto r) => r.Status switch
    {
        PermissionStatuses.Pending => $"waiting (until {r.Deadline.ToLocalTime():HH:mm:ss})",
        PermissionStatuses.Allowed => $"allowed by {r.DecidedByName ?? r.Reason}{(r.Always ? ", from now on" : "")}",
        PermissionStatuses.Denied => $"denied by {r.DecidedByName ?? r.Reason}" + (r.Message is { } m && r.DecidedByName is not null ? $": {m}" : ""),
        PermissionStatuses.TimedOut => "denied: nobody answered in time",
        _ => "withdrawn (the agent stopped waiting)",
    };
}
