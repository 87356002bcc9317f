using System.CommandLine;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe agent commit ID [-m MESSAGE]</c>, <c>push ID</c>, <c>merge ID</c> and <c>update ID</c>: an agent's work on the
/// team's repository, committed (you the author, the agent a co-author), pushed with the team's credential, merged into its
/// base branch, or brought up to date with it (its owner).
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

        var mergeId = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var merge = new Command("merge", "Merge one of your agents' branch into its base branch in the team's repository") { mergeId };
        merge.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(mergeId)!, ct);
            var done = await client.PostAsync($"api/agent/{agentId}/merge", CovibeJsonContext.Default.AgentMergeResponse, ct);
            Console.WriteLine($"Merged {done.WorkBranch} into {done.BaseBranch}{(done.FastForward ? " (fast-forward)" : "")}: {done.BaseBranch} is at {done.Commit[..7]}.");
            if (done.PreviewQueued)
            {
                Console.WriteLine("The preview is deploying it: covibe preview status");
            }
        });
        yield return merge;

        var updateId = new Argument<string>("agent") { Description = "Agent id, or a unique start of it" };
        var update = new Command("update", "Bring the newest commit of its base branch into one of your agents' branch and tree") { updateId };
        update.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var agentId = await AgentCommands.ResolveAsync(client, parse.GetValue(updateId)!, ct);
            var done = await client.PostAsync($"api/agent/{agentId}/update", CovibeJsonContext.Default.AgentUpdateResponse, ct);
            if (done.Conflicts.Length == 0)
            {
                Console.WriteLine($"Updated {done.WorkBranch} from its base at {done.BaseCommit[..7]}: now at {done.Commit![..7]}.");
                return;
            }
            Console.WriteLine($"Brought its base ({done.BaseCommit[..7]}) into the tree of {done.WorkBranch}; these files conflict, with markers to resolve:");
            foreach (var file in done.Conflicts)
            {
                Console.WriteLine($"  {file}");
            }
            Console.Error.WriteLine($"Resolve them (ask the agent), then: covibe agent commit {agentId[..8]}");
        });
        yield return update;
    }
}
