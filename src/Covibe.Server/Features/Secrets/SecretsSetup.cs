using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Secrets;

public static class SecretsSetup
{
    public static IServiceCollection AddSecrets(this IServiceCollection services)
    {
        services.AddOptions<SecretsOptions>().BindConfiguration(SecretsOptions.Section).ValidateOnStart();
        services.AddSingleton<IPostConfigureOptions<SecretsOptions>, DevelopmentEncryptionKey>();
        services.AddSingleton<IValidateOptions<SecretsOptions>, SecretsOptionsValidator>();
        services.AddSingleton<SecretBox>();
        services.AddSingleton<SealedSecrets>();
        return services;
    }
}
