using Covibe.Server.Features.Containers;
using System.Runtime.InteropServices;
using Covibe.Execution;
using Covibe.Server.Features.Vms;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;
using Covibe.Execution.Local;
using Covibe.Execution.Containers;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Machines;

/// <summary>
/// Where members' code runs. The backends are registered by name (<see cref="ExecutionBackends"/>) (<c>sandbox</c> and
/// <c>local</c> on this machine, <c>ssh</c> on members' VMs, <c>container</c> through the Docker
/// Engine API, <c>box</c> inside a member's box); <see cref="MachineResolver"/>
/// picks one for each agent, and for each terminal (asked by the terminals' <c>MachineTerminals</c>).
/// </summary>
public static class MachinesFeature
{
    private const string NotInstalled = "bubblewrap (bwrap) is not installed.";

    public static IServiceCollection AddMachines(this IServiceCollection services)
    {
        services.AddOptions<WorkspacesOptions>().BindConfiguration(WorkspacesOptions.Section);
        services.AddOptions<IsolationOptions>().BindConfiguration(IsolationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<IsolationOptions>, SandboxAvailable>();
        services.AddSingleton<Workspaces>();
        // Built once: by start-up validation when the sandbox is on, else when first needed.
        services.AddSingleton<SandboxOnce>();
        services.AddSingleton(sp => new Sandboxes(sp.GetRequiredService<SandboxOnce>(), sp.GetRequiredService<IOptions<IsolationOptions>>()));
        services.AddSingleton(sp => sp.GetRequiredService<SandboxOnce>().Get(sp.GetRequiredService<IOptions<IsolationOptions>>().Value));
        AddBackend(services, LocalBackend.BackendName, sp => new LocalBackend(sp.GetRequiredService<Workspaces>().RuntimeRoot));
        services.AddSingleton(sp => new SandboxLimits(sp.GetRequiredService<IOptions<IsolationOptions>>().Value, sp.GetRequiredService<Cluster.ThisNode>()));
        AddBackend(services, LocalBackend.SandboxedName, sp =>
            new LocalBackend(sp.GetRequiredService<Workspaces>().RuntimeRoot, sp.GetRequiredService<HostSandbox>(), sp.GetRequiredService<SandboxLimits>().Groups));
        AddBackend(services, SshBackend.BackendName, sp => new SshBackend(
            sp.GetRequiredService<SshClient>(), sp.GetRequiredService<VmConnector>().ConnectAsync, sp.GetRequiredService<Workspaces>().RuntimeRoot));
        services.AddSingleton(sp =>
        {
            var isolation = sp.GetRequiredService<IOptions<IsolationOptions>>().Value;
            var (uid, gid) = CurrentProcess.IsRoot ? (isolation.SandboxUid, isolation.SandboxGid) : CurrentProcess.User;
            return new ContainerUser(uid, gid);
        });
        AddBackend(services, ContainerBackend.BackendName, sp =>
            new ContainerBackend(sp.GetRequiredService<ContainerEngine>().Containers, sp.GetRequiredService<Workspaces>().RuntimeRoot));
        AddBackend(services, ContainerExecBackend.BackendName, sp => new ContainerExecBackend(() => sp.GetRequiredService<ContainerEngine>().Containers));
        services.AddSingleton<ExecutionBackends>();
        services.AddSingleton<MachineResolver>();
        services.AddHostedService<TeamLimitsWatch>();
        return services;
    }

    private static void AddBackend(IServiceCollection services, string name, Func<IServiceProvider, IExecutionBackend> create) =>
        services.AddSingleton(sp => new NamedBackend(name, new Lazy<IExecutionBackend>(() => create(sp))));

    /// <summary>
    /// The sandbox sees the system's programs, this build of covibe (the mock agent runs from it),
    /// the .NET runtime, and what the operator adds; never the data directory.
    /// </summary>
    private static HostSandbox? CreateSandbox(IsolationOptions options, ServerOptions server)
    {
        var bwrap = options.Bubblewrap is { Length: > 0 } configured ? configured : HostSandbox.FindBubblewrap();
        if (bwrap is null || !File.Exists(bwrap))
        {
            return null;
        }
        var runtime = RuntimeEnvironment.GetRuntimeDirectory();
        var dotnetRoot = Path.GetFullPath(Path.Combine(runtime, "..", "..", ".."));
        List<string> readOnly = [AppContext.BaseDirectory.TrimEnd('/'), dotnetRoot, .. options.SandboxReadOnlyPaths.Select(Path.GetFullPath)];
        var dataDirectory = Path.GetFullPath(server.DataDirectory).TrimEnd('/') + "/";
        var exposed = readOnly.Where(p => dataDirectory.StartsWith(p.TrimEnd('/') + "/", StringComparison.Ordinal) || (p.TrimEnd('/') + "/").StartsWith(dataDirectory, StringComparison.Ordinal)).ToList();
        if (exposed.Count > 0)
        {
            throw new InvalidOperationException($"Covibe:Isolation:SandboxReadOnlyPaths: {string.Join(", ", exposed)} would show the server's data directory to sandboxed programs. Name directories outside it.");
        }
        ServerOptions.EnsureDirectory(server.DataDirectory);
        // A network namespace of their own needs root here (bubblewrap and slirp4netns without a user namespace).
        var networking = !options.SandboxNetwork ? SandboxNetworking.None
            : options.SandboxHostNetwork || !UntrustedFiles.RunningAsRoot ? SandboxNetworking.Host
            : SandboxNetworking.Internet;
        return new HostSandbox(bwrap, readOnly, Path.Combine(server.DataDirectory, "sandbox"), (options.SandboxUid, options.SandboxGid), networking,
            networking == SandboxNetworking.Internet ? SandboxNetwork.BlockedRoutes(options.SandboxPrivateNetworks) : null);
    }

    /// <summary>The server's one sandbox, made from the options it is given (so validating them needs no options lookup).</summary>
    internal sealed class SandboxOnce(IOptions<ServerOptions> server)
    {
        private readonly Lock _lock = new();
        private HostSandbox? _sandbox;

        public HostSandbox Get(IsolationOptions options)
        {
            lock (_lock)
            {
                return _sandbox ??= CreateSandbox(options, server.Value) ?? throw new InvalidOperationException(NotInstalled);
            }
        }
    }

    /// <summary>The sandbox members' code on this machine runs in (<see cref="InUse"/>; null when the operator opted out of it).</summary>
    public sealed class Sandboxes
    {
        private readonly SandboxOnce _once;
        private readonly IOptions<IsolationOptions> _isolation;

        // Internal: the validator of IsolationOptions needs the sandbox too, so this takes the options and it does not.
        internal Sandboxes(SandboxOnce once, IOptions<IsolationOptions> isolation)
        {
            _once = once;
            _isolation = isolation;
        }

        public HostSandbox? InUse => _isolation.Value.IsSandboxed ? _once.Get(_isolation.Value) : null;
    }

    /// <summary>Start-up refuses a sandbox that cannot work here, naming the setting that opts out of it.</summary>
    private sealed class SandboxAvailable(SandboxOnce sandboxes) : IValidateOptions<IsolationOptions>
    {
        public ValidateOptionsResult Validate(string? name, IsolationOptions options)
        {
            if (!options.IsSandboxed)
            {
                return ValidateOptionsResult.Success;
            }
            const string OptOut = "Install bubblewrap and slirp4netns (apt-get install bubblewrap slirp4netns), set Covibe:Isolation:SandboxHostNetwork=true " +
                "to let sandboxed programs share this machine's network, or set Covibe:Isolation:HostExecution=unsandboxed " +
                "(environment: Covibe__Isolation__HostExecution=unsandboxed) to run members' agents and terminals with the server's own privileges.";
            HostSandbox sandbox;
            try
            {
                sandbox = sandboxes.Get(options);
            }
            catch (InvalidOperationException e) when (e.Message.StartsWith(NotInstalled, StringComparison.Ordinal))
            {
                return ValidateOptionsResult.Fail($"Covibe:Isolation:HostExecution is 'sandbox', but bubblewrap ({options.Bubblewrap ?? "bwrap"}) is not installed. {OptOut}");
            }
            catch (InvalidOperationException e)
            {
                return ValidateOptionsResult.Fail(e.Message);
            }
            return sandbox.Check() is { } problem
                ? ValidateOptionsResult.Fail($"Covibe:Isolation:HostExecution is 'sandbox', but the sandbox does not start here: {problem}. {OptOut}")
                : ValidateOptionsResult.Success;
        }
    }
}
