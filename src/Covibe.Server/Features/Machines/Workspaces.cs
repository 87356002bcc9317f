using Covibe.Execution;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Machines;

/// <summary>
/// Seed 003's workspaces: one directory per team under <c>WORKSPACE_BASE</c> (default
/// <c>&lt;data&gt;/workspaces</c>), shared by the team's agents and terminals on this machine; and
/// the agents' runtime directories (FIFO, log, exit code) under <c>&lt;data&gt;/agents</c>.
/// </summary>
public sealed class Workspaces(IOptions<WorkspacesOptions> options, IOptions<ServerOptions> server, MachinesFeature.Sandboxes sandboxes)
{
    public string Base => options.Value.WorkspaceBase is { Length: > 0 } configured
        ? Path.GetFullPath(configured)
        : Path.Combine(server.Value.DataDirectory, "workspaces");

    public string RuntimeRoot => Path.Combine(server.Value.DataDirectory, "agents");

    /// <summary>The team's workspace, created on first use and writable by the sandbox's user.</summary>
    public string ForTeam(string teamId)
    {
        // Team ids are server-made; nothing a member typed reaches the path.
        ServerOptions.EnsureDirectory(server.Value.DataDirectory);
        ServerOptions.EnsureDirectory(Base);
        var path = Path.Combine(Base, teamId);
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        sandboxes.InUse?.GiveToSandbox(path);
        return RealPath.Resolve(path) ?? path;
    }
}
