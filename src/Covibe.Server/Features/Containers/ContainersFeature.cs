using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Containers;

/// <summary>
/// The container engine at <c>DOCKER_HOST</c> as every feature that runs containers sees it: its client and health
/// (<see cref="ContainerEngine"/>), seed 003's record of the containers Covibe made (<see cref="ContainerJournal"/>),
/// kept true by <see cref="ContainerReconciler"/>. Machines (agents, terminals, previews) and boxes stand on it.
/// </summary>
public static class ContainersFeature
{
    public static IServiceCollection AddContainers(this IServiceCollection services)
    {
        services.AddOptions<ContainersOptions>().BindConfiguration(ContainersOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ContainerJournal>();
        // First of the hosted services: the firewall stands before any container of a team starts.
        services.AddSingleton<TeamNetworkWall>();
        services.AddHostedService(sp => sp.GetRequiredService<TeamNetworkWall>());
        services.AddSingleton<ContainerEngine>();
        services.AddSingleton<ContainerReconciler>();
        services.AddHostedService(sp => sp.GetRequiredService<ContainerReconciler>());
        return services;
    }
}
