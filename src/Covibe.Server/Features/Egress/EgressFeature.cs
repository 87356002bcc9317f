namespace Covibe.Server.Features.Egress;

/// <summary>
/// Each team's egress policy (where its code on this machine may connect): set by its owner within the operator's
/// bounds (<see cref="EgressApi"/>, <see cref="EgressPolicies"/>), enforced where the code runs (<see cref="EgressEnforcement"/>:
/// the sandbox's rules, the team bridge's chain, the <see cref="EgressProxy"/> for allowed names), and each refusal told
/// to the team (<see cref="EgressEvents"/>, from the proxy and from the kernel's log: <see cref="EgressKernelWatch"/>).
/// </summary>
public static class EgressFeature
{
    public static IServiceCollection AddEgress(this IServiceCollection services)
    {
        services.AddOptions<EgressOptions>().BindConfiguration(EgressOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<EgressPolicies>();
        services.AddSingleton<EgressEvents>();
        services.AddSingleton<ContainerEgress>();
        services.AddSingleton<EgressProxy>();
        services.AddHostedService(sp => sp.GetRequiredService<EgressProxy>());
        services.AddHostedService<EgressKernelWatch>();
        services.AddSingleton<EgressEnforcement>();
        return services;
    }
}
