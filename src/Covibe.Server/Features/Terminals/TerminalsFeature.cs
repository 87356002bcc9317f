using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Hub;
using Covibe.Server.Features.Vms;
using Covibe.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using Covibe.Terminals;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Terminals;

/// <summary>
/// Terminals inside <c>covibe serve</c>: seed 004's protocol at <c>/terminal</c>, on the machine
/// where local agents run, starting in the agents' workspace directory. Members sign in with
/// their access token; teammates may watch a session its owner shares.
/// </summary>
public static class TerminalsFeature
{
    public const string Path = "/terminal";

    public static IServiceCollection AddServerTerminals(this IServiceCollection services)
    {
        // Before AddTerminals, whose default launcher only knows this machine.
        services.AddSingleton<ITerminalLauncher, MemberLauncher>();
        services.AddTerminals();
        services.AddSingleton<IPostConfigureOptions<TerminalOptions>, WorkspaceRoot>();
        services.AddHostedService<RevocationBridge>();
        services.AddSingleton<ITerminalAuthenticator, MemberAuthenticator>();
        return services;
    }

    public static IEndpointRouteBuilder MapServerTerminals(this IEndpointRouteBuilder app)
    {
        var hub = app.ServiceProvider.GetRequiredService<IOptions<HubOptions>>();
        app.MapTerminals(Path, (origin, request) => hub.Value.IsOriginAllowed(origin, request));
        return app;
    }

    /// <summary>Logout and member removal close terminal connections at once, as they do hub connections.</summary>
    private sealed class RevocationBridge(SessionEvents sessions, TerminalManager terminals) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            sessions.Revoked += terminals.RevokeLogins;
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken)
        {
            sessions.Revoked -= terminals.RevokeLogins;
            return Task.CompletedTask;
        }
    }

    /// <summary>Unless configured, terminals start in (and may not leave) the agents' workspace directory.</summary>
    private sealed class WorkspaceRoot(AgentLauncher agents, IOptions<ServerOptions> server) : IPostConfigureOptions<TerminalOptions>
    {
        public void PostConfigure(string? name, TerminalOptions options)
        {
            if (string.IsNullOrEmpty(options.Root))
            {
                options.Root = agents.WorkspaceBase;
                // The data directory first, owner-only as always, in case the workspace lies inside it.
                ServerOptions.EnsureDirectory(server.Value.DataDirectory);
                ServerOptions.EnsureDirectory(options.Root);
            }
        }
    }

    /// <summary>
    /// A shell on this machine, or with <c>vm</c> on one of the member's own VMs: <c>ssh -tt</c> over the
    /// server's shared connection, starting in <c>~/project</c> (where VM agents work) or the given
    /// <c>cwd</c>, in the VM user's login shell.
    /// </summary>
    private sealed class MemberLauncher(TerminalLaunch local, IDbContextFactory<CovibeDb> dbs, VmConnector vms, SshClient ssh) : ITerminalLauncher
    {
        private const string RemoteShell = "cd -- \"$1\" 2>/dev/null || cd; exec \"${SHELL:-/bin/sh}\" -l";

        public async Task<TerminalStart> StartInfoAsync(TerminalUser user, string sessionId, TerminalConfig? config, CancellationToken cancellationToken)
        {
            if (config?.Vm is not { Length: > 0 } vmId)
            {
                return new TerminalStart(local.Build(config, sessionId));
            }
            var (cols, rows) = TerminalLaunch.Size(config.Cols, config.Rows);
            string name;
            await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
            {
                name = await db.Vms.Where(vm => vm.Id == vmId && vm.UserId == user.Id).Select(vm => vm.Name).SingleOrDefaultAsync(cancellationToken)
                    ?? throw new TerminalException(TerminalErrorCodes.InvalidVm, $"You have no VM '{vmId}'. Terminals open on your own VMs (GET /api/vm/list), or on this server without 'vm'.");
            }
            try
            {
                var target = await vms.ConnectAsync(vmId, cancellationToken);
                var info = await ssh.InteractiveAsync(target, ["sh", "-c", RemoteShell, "covibe-terminal", config.Cwd ?? "project"], cols, rows, cancellationToken);
                return new TerminalStart(info, name);
            }
            catch (SshException e)
            {
                throw new TerminalException(TerminalErrorCodes.CommandFailed, e.Message);
            }
        }
    }

    /// <summary>A Covibe access token whose login is still live; the team comes from the token.</summary>
    private sealed class MemberAuthenticator(TokenService tokens, AuthService auth) : ITerminalAuthenticator
    {
        public async Task<TerminalAuthResult> AuthenticateAsync(string token, CancellationToken cancellationToken)
        {
            var (principal, failure) = await tokens.ValidateAsync(token);
            if (principal is null)
            {
                return TerminalAuthResult.Refused(failure!);
            }
            var caller = Caller.From(principal);
            if (!await auth.IsSessionActiveAsync(caller.SessionId, cancellationToken))
            {
                return TerminalAuthResult.Refused("This login was signed out or the member was removed. Log in again.");
            }
            return new TerminalAuthResult(new TerminalUser(caller.UserId, caller.Name, caller.TeamId, caller.SessionId), null);
        }
    }
}
