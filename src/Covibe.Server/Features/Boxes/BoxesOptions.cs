using System.ComponentModel.DataAnnotations;

namespace Covibe.Server.Features.Boxes;

/// <summary><c>Covibe:Boxes</c>: boxes and warm pools (seed 002). Boxes run in containers of the engine at <c>DOCKER_HOST</c> (<c>Covibe:Containers</c>).</summary>
public sealed class BoxesOptions
{
    public const string Section = "Covibe:Boxes";

    /// <summary>
    /// The operator's pools, a JSON file like seed 000's <c>vm-instances.json</c>:
    /// <c>{"pools": [{"team": "&lt;team id or name&gt;", "repoUrl": "...", "baseBranch": "main", "minStandby": 2, "maxInstances": 6}]}</c>.
    /// Read at start-up (a bad file stops the server, naming what is wrong).
    /// </summary>
    public string? PoolsFile { get; set; }

    /// <summary>Repositories on this machine's disk (a path or <c>file://</c>). Off: a team could read the server's own repositories.</summary>
    public bool AllowLocalRepositories { get; set; }

    /// <summary>Boxes provisioned at once on this node; pools may use all but one of them, so members' own requests never wait behind pool work.</summary>
    [Range(1, 64)] public int MaxProvisioning { get; set; } = 3;

    /// <summary>How often the reconciler looks at every pool (it also runs at once after a claim or a change).</summary>
    [Range(1, 3600)] public int ReconcileSeconds { get; set; } = 10;

    /// <summary>How often a pool's base branch is checked for new commits (ready boxes of an older commit are replaced).</summary>
    [Range(1, 86400)] public int HeadCheckSeconds { get; set; } = 60;

    /// <summary>Failures in a row after which a pool pauses (until its config changes or its branch moves); before that each failure backs off twice as long.</summary>
    [Range(1, 100)] public int PauseAfterFailures { get; set; } = 3;
    [Range(1, 3600)] public int BackoffSeconds { get; set; } = 10;

    /// <summary>How long one box may take to provision (clone, devcontainer, lifecycle commands).</summary>
    [Range(10, 86400)] public int ProvisionTimeoutSeconds { get; set; } = 900;

    /// <summary>The largest <c>.env</c> a request may carry.</summary>
    [Range(1, 1048576)] public int MaxEnvBytes { get; set; } = 65536;

    /// <summary>Boxes a team may hold or have provisioning (pool standbys not counted), and the largest <c>maxInstances</c> of a pool.</summary>
    [Range(1, 10000)] public int MaxBoxesPerTeam { get; set; } = 20;
    [Range(1, 1000)] public int MaxPoolInstances { get; set; } = 20;

    /// <summary>The Dev Containers CLI (<c>npm install -g @devcontainers/cli</c>); unset: <c>devcontainer</c> on the PATH.</summary>
    public string? DevcontainerCli { get; set; }

    /// <summary>The docker-compatible command the Dev Containers CLI drives; unset: <c>docker</c> if installed, else Podman's remote client.</summary>
    public string? DockerCli { get; set; }
}
