namespace Covibe.Server.Features.Backups;

/// <summary>Backups (issue 29, point 4): <c>covibe backup</c> and <c>covibe restore</c>; no route, no background work.</summary>
public static class BackupsSetup
{
    public static IServiceCollection AddBackups(this IServiceCollection services)
    {
        services.AddSingleton<BackupWriter>();
        services.AddSingleton<BackupRestorer>();
        return services;
    }
}
