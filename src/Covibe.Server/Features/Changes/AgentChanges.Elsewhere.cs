using Covibe.Execution;
using Covibe.Server.Features.Agents;

namespace Covibe.Server.Features.Changes;

/// <summary>
/// The changes of agents whose trees are on another machine (an SSH or runner VM): read there with the same script as the
/// VM's user, through the backend's short commands; objects travel as git bundles (a commit's back, a base's there).
/// </summary>
public sealed partial class AgentChanges
{
    /// <summary>
    /// For an agent on another machine (an SSH VM): the same script run there, as the VM's user, on its tree
    /// (<c>~/project/&lt;dir&gt;</c>, a clone with objects of its own) and a scratch repository of its own beside it
    /// (<c>~/.covibe/changes/&lt;id&gt;</c>); only what it prints comes back.
    /// </summary>
    private static async Task<(int Code, string Output, string Errors)> RunThereAsync(IExecutionBackend remote, Agent agent, string what, string argument, int maxOutput,
        IReadOnlyDictionary<string, string>? extra, CancellationToken cancellationToken)
    {
        var tree = RemoteTree(agent);
        string[] argv = ["env", .. (extra ?? new Dictionary<string, string>()).Select(e => $"{e.Key}={e.Value}"),
            .. ChangeScript.Argv(tree, RemoteScratch(agent.Id), $"{tree}/.git/objects", agent.BaseCommit!, what, argument)];
        try
        {
            var (code, output, errors) = await remote.RunShortAsync(agent.Target!, argv, null, Timeout, cancellationToken);
            return output.Length > maxOutput ? (-1, output[..maxOutput], errors) : (code, output, errors);
        }
        catch (Exception e) when (e is IOException or Covibe.Execution.Ssh.SshException)
        {
            return (255, "", $"The VM did not answer: {e.Message}");
        }
    }

    /// <summary>The agent's tree on its VM, relative to its user's home (seed 001's <c>~/project</c>).</summary>
    internal static string RemoteTree(Agent agent) => $"project/{agent.WorkingDirectory}";

    /// <summary>The scratch repository for an agent's tree on its VM, relative to its user's home.</summary>
    internal static string RemoteScratch(string agentId) => $".covibe/changes/{agentId}";

    /// <summary>
    /// Where the commit just made (<see cref="CommitAsync"/>, at <c>refs/heads/commit</c>) can be fetched from on this
    /// machine: the server's scratch repository; for an agent on another machine, a bundle of its new objects brought from
    /// there (<paramref name="parents"/> excluded), which the caller deletes.
    /// </summary>
    public async Task<(string Path, bool Temporary)> CommittedAsync(Agent agent, IReadOnlyList<string> parents, CancellationToken cancellationToken)
    {
        if (backends.Get(agent.Backend) is not { Remote: true } remote)
        {
            return (ScratchRepository(agent.Id), false);
        }
        const string Bundle = """d="$HOME/$1"; shift; git --git-dir "$d" bundle create --quiet - refs/heads/commit "$@" | base64""";
        var (code, output, errors) = await remote.RunShortAsync(agent.Target!, ["sh", "-c", Bundle, "covibe-bundle", $"{RemoteScratch(agent.Id)}/git", .. parents.Select(p => "^" + p)],
            null, TimeSpan.FromMinutes(5), cancellationToken);
        byte[] bytes;
        try
        {
            bytes = code == 0 ? Convert.FromBase64String(output) : [];
        }
        catch (FormatException)
        {
            bytes = [];
        }
        if (bytes.Length == 0 || !System.Text.Encoding.ASCII.GetString(bytes, 0, Math.Min(bytes.Length, 16)).StartsWith("# v2 git bundle", StringComparison.Ordinal))
        {
            throw Unreadable(agent, code, $"the commit could not be brought from the VM. {errors.Trim()}");
        }
        var path = Path.Combine(Scratch(agent.Id), $"commit-{Guid.NewGuid():N}.bundle");
        await File.WriteAllBytesAsync(path, bytes, cancellationToken);
        return (path, true);
    }

    /// <summary>
    /// For an agent on another machine: sends the objects of <paramref name="target"/> that its tree lacks (it has
    /// <paramref name="has"/>) as a bundle, fetched into its tree's repository, before <see cref="UpdateTreeAsync"/> moves it
    /// there. <paramref name="reference"/> names the target in the team's mirror meanwhile. Nothing to do on this machine.
    /// </summary>
    public async Task SendThereAsync(Agent agent, string reference, string target, string has, CancellationToken cancellationToken)
    {
        if (backends.Get(agent.Backend) is not { Remote: true } remote)
        {
            return;
        }
        var bundle = await TreeBundles.CreateAsync(new WorkTree(mirrors.PathOf(agent.TeamId), target, agent.WorkBranch!, reference), cancellationToken, [has]);
        const string Fetch = """cd "$HOME/$1" || exit 4; f=$(mktemp) || exit 1; cat > "$f"; git fetch --quiet --no-tags "$f" "+$2:refs/covibe/update"; s=$?; rm -f "$f"; exit $s""";
        var (code, _, errors) = await remote.RunShortAsync(agent.Target!, ["sh", "-c", Fetch, "covibe-send", RemoteTree(agent), reference], bundle, TimeSpan.FromMinutes(5),
            cancellationToken);
        if (code != 0)
        {
            throw Unreadable(agent, code, $"the base could not be sent to the VM. {errors.Trim()}");
        }
    }

    /// <summary>Removes the agent's tree and scratch on its VM (its work discarded).</summary>
    public async Task RemoveThereAsync(Agent agent, CancellationToken cancellationToken)
    {
        if (backends.Get(agent.Backend) is { Remote: true } remote)
        {
            await remote.RunShortAsync(agent.Target!, ["sh", "-c", """rm -rf -- "$HOME/$1" "$HOME/$2" """, "covibe-discard", RemoteTree(agent), RemoteScratch(agent.Id)],
                null, Timeout, cancellationToken);
        }
    }

    /// <summary>Whether the agent's tree is on another machine (an SSH VM), read there.</summary>
    public bool Elsewhere(Agent agent) => backends.Get(agent.Backend).Remote;
}
