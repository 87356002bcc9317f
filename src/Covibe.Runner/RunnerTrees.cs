using Covibe.Execution;
using Covibe.Protocol;

namespace Covibe.Runner;

/// <summary>
/// What the server asks of this runner for agents on the team's repository: the pieces of an agent's work tree (a git
/// bundle kept at <c>~/agent_logs/&lt;id&gt;/tree.bundle</c> until its <c>start</c> clones it), and short commands (the
/// agent's changes read here, its commit's objects bundled), run as this runner's user, never through a shell, their
/// output capped at <see cref="MaxOutputBytes"/>.
/// </summary>
internal sealed class RunnerTrees(string home)
{
    public const int MaxOutputBytes = 2 * 1024 * 1024;

    /// <summary>The bundle's path for <paramref name="agentId"/>, where <c>tree_data</c> writes it and the wrapper clones it from.</summary>
    public string BundlePath(string agentId) => Path.Combine(home, "agent_logs", agentId, "tree.bundle");

    public async Task<RunnerMessage> TakeAsync(RunnerMessage request, CancellationToken cancellationToken)
    {
        if (request.AgentId is not { } agentId || !RunnerAgents.IsAgentId(agentId) || request.Offset is not ({ } offset and >= 0) || request.Data is not { } data
            || request.Size is not ({ } size and >= 0 and <= TreeBundles.MaxBytes))
        {
            return RunnerAgents.Refuse(request, "The tree_data request is malformed (agent id, offset, size or data).");
        }
        var bytes = Convert.FromBase64String(data);
        if (offset + bytes.Length > size)
        {
            return RunnerAgents.Refuse(request, "The piece goes past the tree's size.");
        }
        var runtime = Path.GetDirectoryName(BundlePath(agentId))!;
        Directory.CreateDirectory(runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await using var file = new FileStream(BundlePath(agentId), offset == 0 ? FileMode.Create : FileMode.OpenOrCreate, FileAccess.Write);
        file.Seek(offset, SeekOrigin.Begin);
        await file.WriteAsync(bytes, cancellationToken);
        return RunnerAgents.Ok(request);
    }

    public static async Task<RunnerMessage> RunAsync(RunnerMessage request, CancellationToken cancellationToken)
    {
        if (request.Argv is not { Length: > 0 } argv)
        {
            return RunnerAgents.Refuse(request, "The run request has no argv.");
        }
        var (code, stdout, stderr) = await RunnerAgents.RunAsync(argv, request.Data is { } input ? Convert.FromBase64String(input) : [], cancellationToken);
        var output = System.Text.Encoding.UTF8.GetBytes(stdout);
        return new RunnerMessage(RunnerProtocol.Result, Id: request.Id, ExitCode: code, Data: Convert.ToBase64String(output.AsSpan(0, Math.Min(output.Length, MaxOutputBytes))),
            Error: stderr.Length > 4096 ? stderr[..4096] : stderr);
    }
}
