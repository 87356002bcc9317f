using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Covibe.Protocol;
using Spectre.Console;

namespace Covibe.Cli;

/// <summary><c>covibe agent spawn|ls|logs|kill|input|interrupt|end</c>.</summary>
internal static class AgentCommands
{
    public static Command Create(CredentialStore store)
    {
        var agent = new Command("agent", "Spawn agents, watch any teammate's, control your own");
        agent.Subcommands.Add(Spawn(store));
        agent.Subcommands.Add(List(store));
        agent.Subcommands.Add(AgentCostsCommand.Create(store));
        agent.Subcommands.Add(AgentBudgetCommand.Create(store));
        agent.Subcommands.Add(Logs(store));
        agent.Subcommands.Add(Control(store, "kill", "Stop one of your agents (SIGTERM, then SIGKILL)", (id, _) => (HttpMethod.Delete, $"api/agent/{id}", null)));
        agent.Subcommands.Add(Control(store, "interrupt", "Interrupt one of your agents, like Ctrl-C", (id, _) => (HttpMethod.Post, $"api/agent/{id}/interrupt", null)));
        agent.Subcommands.Add(Control(store, "end", "Close one of your agents' input, so a conversation finishes", (id, _) => (HttpMethod.Post, $"api/agent/{id}/end", null)));
        agent.Subcommands.Add(Input(store));
        foreach (var approvals in AgentSteeringCommands.Create(store))
        {
            agent.Subcommands.Add(approvals);
        }
        agent.Subcommands.Add(AgentDiffCommand.Create(store));
        foreach (var command in AgentBranchCommands.Create(store))
        {
            agent.Subcommands.Add(command);
        }
        agent.Subcommands.Add(Control(store, "discard", "Remove one of your ended agents' work tree and branch (on the team's repository)", (id, _) => (HttpMethod.Post, $"api/agent/{id}/discard", null),
            "Discarded: the agent's work tree is removed and its branch deleted."));
        return agent;
    }

    private static Command Spawn(CredentialStore store)
    {
        var task = new Argument<string>("task") { Description = "What the agent should do" };
        var type = new Option<string?>("--type") { Description = "Agent type: claude (default), claude-chat, mock, or one the server configures" };
        var repo = new Option<string?>("--repo") { Description = "Git repository to clone into the agent's workspace first" };
        var branch = new Option<string?>("--branch") { Description = "Branch to clone (with --repo)" };
        var vm = new Option<string?>("--vm") { Description = "Run it on one of your VMs (name or id; see `covibe vm ls`) instead of the server" };
        var box = new Option<string?>("--box") { Description = "Run it in one of your boxes (see `covibe box ls`), on the box's repository" };
        var baseBranch = new Option<string?>("--base") { Description = "On the team's repository (the default once it has one): the branch to start the agent's own branch from" };
        var noTeamRepo = new Option<bool>("--no-team-repo") { Description = "Start in an empty directory even though the team has a repository" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Then show its output live until it ends" };
        var permissions = new Option<string?>("--permissions") { Description = "What it may do without asking: ask (the default: its owner approves each tool it wants to use), ask-but-allow-reads, or bypass (where the server allows it)" };
        var raw = RawOption();
        var command = new Command("spawn", "Start an agent on a task") { task, type, repo, branch, vm, box, baseBranch, noTeamRepo, permissions, follow, raw };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = parse.GetValue(vm) is { } given ? await VmCommands.ResolveAsync(client, given, ct) : null;
            // Seed 003's route: it also says where the agent runs, and why if not where the operator asked.
            var answer = await client.PostAsync("api/agents/spawn",
                new SpawnAgentRequest(parse.GetValue(task), parse.GetValue(type), parse.GetValue(repo), parse.GetValue(branch), VmId: vmId, BoxId: parse.GetValue(box),
                    BaseBranch: parse.GetValue(baseBranch), TeamRepository: parse.GetValue(noTeamRepo) ? false : null, PermissionMode: parse.GetValue(permissions)),
                CovibeJsonContext.Default.SpawnAgentRequest, CovibeJsonContext.Default.SpawnAgentResponse, ct);
            var spawned = answer.Agent;
            var where = answer.Method switch { "docker" => " in a container", "ssh" => " on your VM", "runner" => " on your VM, through its runner", "box" => " in your box", _ => spawned.RunsOn == "sandbox" ? " on the server, sandboxed" : " on the server" };
            await Console.Error.WriteLineAsync($"Agent {spawned.Id} ({spawned.Type}) {spawned.Status}{where}.");
            if (spawned.WorkBranch is { } workBranch)
            {
                await Console.Error.WriteLineAsync($"On its own branch {workBranch}, from {spawned.Branch} at {spawned.BaseCommit?[..7]} (see its changes: covibe agent diff {spawned.Id[..8]}).");
            }
            if (spawned.PermissionMode is PermissionModes.Ask or PermissionModes.AskButAllowReads)
            {
                await Console.Error.WriteLineAsync($"It asks before it runs commands or writes files: answer with covibe agent approve|deny {spawned.Id[..8]}, or on the web page.");
            }
            if (answer.Fallback is { } fallback)
            {
                await Console.Error.WriteLineAsync($"Note: {fallback}");
            }
            Console.WriteLine(spawned.Id);
            if (parse.GetValue(follow))
            {
                Environment.ExitCode = await FollowAsync(client, spawned.Id, 0, parse.GetValue(raw), ct);
            }
        });
        return command;
    }

    private static Command List(CredentialStore store)
    {
        var command = new Command("ls", "List the team's agents");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var list = await client.GetAsync("api/agent/list", CovibeJsonContext.Default.AgentListResponse, ct);
            var table = new Table().AddColumns(
                new TableColumn("Id").NoWrap(), new TableColumn("Owner"), new TableColumn("Status").NoWrap(), new TableColumn("Type"),
                new TableColumn("Task"), new TableColumn("Elapsed").NoWrap(), new TableColumn("Cost").NoWrap());
            var now = TimeProvider.System.GetUtcNow().UtcDateTime;
            foreach (var a in list.Agents)
            {
                var elapsed = ((a.CompletedAt ?? now) - (a.StartedAt ?? a.CreatedAt)).ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture);
                var task = a.Task.Length <= 50 ? a.Task : a.Task[..50] + "…";
                var who = a.OwnerId == client.Credentials?.UserId ? " (you)" : a.CanControl ? " (handed to you)" : "";
                table.AddRow(a.Id[..12], Markup.Escape(a.OwnerName + who), a.PendingApprovals > 0 ? "waiting for approval" : a.Status, a.Type,
                    Markup.Escape(task), elapsed, a.CostUsd is { } c ? $"${c:0.0000}" : "");
            }
            AnsiConsole.Write(table);
        });
        return command;
    }

    private static Command Logs(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep showing output live until the agent ends (reconnects on its own)" };
        var from = new Option<long>("--from") { Description = "Start at this byte position of the output" };
        var raw = RawOption();
        var command = new Command("logs", "Show an agent's output (readable; --raw for the bytes as written)") { id, follow, from, raw };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            var position = parse.GetValue(from);
            if (parse.GetValue(follow))
            {
                Environment.ExitCode = await FollowAsync(client, agentId, position, parse.GetValue(raw), ct);
                return;
            }
            var renderer = new AgentRenderer(Console.Out, parse.GetValue(raw), position);
            foreach (var action in (await client.GetAsync($"api/agent/{agentId}/actions?from={position}", CovibeJsonContext.Default.AgentActionsResponse, ct)).Actions)
            {
                renderer.Note(action);
            }
            while (true)
            {
                var (bytes, next, complete) = await client.GetBytesAsync($"api/agent/{agentId}/output?from={position}", ct);
                renderer.Write(bytes);
                if (complete || bytes.Length == 0)
                {
                    break;
                }
                position = next;
            }
            renderer.Flush();
        });
        return command;
    }

    private static Command Input(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var text = new Argument<string>("text") { Description = "What to send (a newline is added)" };
        var command = new Command("input", "Send input to one of your agents") { id, text };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            await client.PostAsync($"api/agent/{agentId}/input", new AgentInputRequest(parse.GetValue(text) + "\n"),
                CovibeJsonContext.Default.AgentInputRequest, CovibeJsonContext.Default.AgentDto, ct);
            Console.WriteLine("Sent.");
        });
        return command;
    }

    private static Command Control(CredentialStore store, string name, string description, Func<string, ParseResult, (HttpMethod, string, HttpContent?)> request,
        string? done = null)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var command = new Command(name, description) { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            var (method, path, content) = request(agentId, parse);
            await client.SendAsync(method, path, content, ct);
            Console.WriteLine(done ?? $"{name}: sent to {agentId}.");
        });
        return command;
    }

    private static Option<bool> RawOption() => new("--raw") { Description = "Print the output bytes exactly as the agent wrote them" };

    /// <summary>An agent id from a full id or a unique prefix.</summary>
    internal static async Task<string> ResolveAsync(CovibeClient client, string given, CancellationToken cancellationToken)
    {
        var list = await client.GetAsync("api/agent/list", CovibeJsonContext.Default.AgentListResponse, cancellationToken);
        var matches = list.Agents.Where(a => a.Id.StartsWith(given, StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.Count switch
        {
            1 => matches[0].Id,
            0 => throw new CliException($"No agent of your team starts with '{given}'. See `covibe agent ls`."),
            _ => throw new CliException($"'{given}' matches {matches.Count} agents; give more of the id."),
        };
    }

    /// <summary>
    /// Live output over the hub from <paramref name="from"/> to the end, reconnecting with backoff and
    /// resuming at the last position seen. Returns 0 if the agent completed, 1 otherwise.
    /// </summary>
    private static async Task<int> FollowAsync(CovibeClient client, string agentId, long from, bool raw, CancellationToken cancellationToken)
    {
        var renderer = new AgentRenderer(Console.Out, raw, from);
        var next = from;
        var exitCode = 1;
        await client.FollowHubAsync(
            socket => socket.SendAsync(
                JsonSerializer.SerializeToUtf8Bytes(new AgentSubscribeMessage(agentId, next), CovibeJsonContext.Default.AgentSubscribeMessage),
                WebSocketMessageType.Text, true, cancellationToken),
            message =>
            {
                switch (message.GetProperty("type").GetString())
                {
                    case HubMessageTypes.AgentOutput:
                        var output = message.Deserialize(CovibeJsonContext.Default.AgentOutputMessage)!;
                        if (output.AgentId == agentId && output.Position == next)
                        {
                            renderer.Write(AgentRenderer.Decode(output));
                            next = output.Next;
                        }
                        return false;
                    case HubMessageTypes.AgentActions:
                        var replayed = message.Deserialize(CovibeJsonContext.Default.AgentActionsMessage)!;
                        if (replayed.AgentId == agentId)
                        {
                            Array.ForEach(replayed.Actions, renderer.Note);
                        }
                        return false;
                    case HubMessageTypes.AgentAction:
                        var action = message.Deserialize(CovibeJsonContext.Default.AgentActionMessage)!.Action;
                        if (action.AgentId == agentId)
                        {
                            renderer.Note(action);
                        }
                        return false;
                    case HubMessageTypes.AgentOutputEnd:
                        var end = message.Deserialize(CovibeJsonContext.Default.AgentOutputEndMessage)!;
                        if (end.AgentId != agentId)
                        {
                            return false;
                        }
                        renderer.Flush();
                        Console.Error.WriteLine($"Agent {agentId} {end.Status}.");
                        exitCode = end.Status == AgentStatuses.Completed ? 0 : 1;
                        return true;
                    case HubMessageTypes.Error:
                        throw new CliException(message.Deserialize(CovibeJsonContext.Default.ErrorMessage)!.Error);
                    default:
                        return false;
                }
            },
            () => $"resuming at byte {next}",
            cancellationToken);
        return exitCode;
    }
}
