using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Hub;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Vms;
using Covibe.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using Covibe.Terminals;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Terminals;

/// <summary>
/// Terminals inside <c>covibe serve</c>: seed 004's protocol at <c>/terminal</c>, where the team's
/// agents run (<see cref="MachineTerminals"/> decides), starting in the team's workspace. Members
/// sign in with their access token; teammates may watch a session its owner shares.
/// </summary>
public static class TerminalsFeature
{
    public const string Path = "/terminal";

    public static IServiceCollection AddServerTerminals(this IServiceCollection services)
    {
        // Before AddTerminals, whose default launcher only knows this machine.
        services.AddSingleton<ITerminalLauncher, MachineTerminals>();
        services.AddTerminals();
        services.AddSingleton<IPostConfigureOptions<TerminalOptions>, WorkspaceRoot>();
        services.AddHostedService<RevocationBridge>();
        services.AddSingleton<ITerminalAuthenticator, MemberAuthenticator>();
        return services;
    }

    /// <summary>With <c>REDIS_URL</c>: terminals listed on every node, attached through the node the client reached.</summary>
    public static IServiceCollection AddTerminalsAcrossNodes(this IServiceCollection services)
    {
        services.AddSingleton<RedisTerminalPeers>();
        services.AddSingleton<ITerminalPeers>(sp => sp.GetRequiredService<RedisTerminalPeers>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisTerminalPeers>());
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

    /// <summary>Unless configured, the terminal root is the workspaces' directory (each member's shell starts in their team's workspace).</summary>
    private sealed class WorkspaceRoot(Workspaces workspaces, IOptions<ServerOptions> server) : IPostConfigureOptions<TerminalOptions>
    {
        public void PostConfigure(string? name, TerminalOptions options)
        {
            if (string.IsNullOrEmpty(options.Root))
            {
                options.Root = workspaces.Base;
                // The data directory first, owner-only as always, in case the workspace lies inside it.
                ServerOptions.EnsureDirectory(server.Value.DataDirectory);
                ServerOptions.EnsureDirectory(options.Root);
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
