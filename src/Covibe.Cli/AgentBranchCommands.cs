using System.CommandLine;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe agent commit ID [-m MESSAGE]</c> and <c>covibe agent push ID</c>: an agent's work on the team's repository,
/// committed (you the author, the agent a co-author) and pushed with the team's credential (its owner).
/// </summary>
internal static class AgentBranchCommands
{
    public static IEnumerable<Command> Create(CredentialStore store)
    {
        var id = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var message = new Option<string?>("--message", "-m") { Description = "The commit message (default: one proposed from the agent's task)" };
        var commit = new Command("commit", "Commit one of your agents' work as it is now, on its own branch") { id, message };
        commit.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(id)!, ct);
            var done = await client.PostAsync($"api/agent/{agentId}/commit", new AgentCommitRequest(parse.GetValue(message)),
                CovibeJsonContext.Default.AgentCommitRequest, CovibeJsonContext.Default.AgentBranchResponse, ct);
            Console.WriteLine($"Committed {done.Commit[..7]} on {done.WorkBranch}: {done.Message?.Split('\n')[0]}");
            Console.Error.WriteLine($"Push it to the team's repository: covibe agent push {agentId[..8]}");
        });
        yield return commit;

        var pushId = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var push = new Command("push", "Push one of your agents' branch to the team's repository") { pushId };
        push.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(pushId)!, ct);
            var done = await client.PostAsync($"api/agent/{agentId}/push", CovibeJsonContext.Default.AgentBranchResponse, ct);
            Console.WriteLine($"Pushed {done.WorkBranch} at {done.Commit[..7]}.");
            if (done.PullRequestUrl is { } link)
            {
                Console.WriteLine($"Open a pull request: {link}");
            }
        });
        yield return push;
    }
}
