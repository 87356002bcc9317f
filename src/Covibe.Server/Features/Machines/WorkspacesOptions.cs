namespace Covibe.Server.Features.Machines;

/// <summary>
/// Where working directories live: seed 003's <c>WORKSPACE_BASE</c>, read from <c>Covibe:Agents:WorkspaceBase</c>, where
/// the seeds and the configuration guide name it, though the setting is the machines' (terminals and boxes use it too).
/// </summary>
public sealed class WorkspacesOptions
{
    public const string Section = "Covibe:Agents";

    /// <summary>One directory per team under it. Default: <c>&lt;data&gt;/workspaces</c>.</summary>
    public string? WorkspaceBase { get; set; }
}
