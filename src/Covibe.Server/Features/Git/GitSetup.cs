namespace Covibe.Server.Features.Git;

public static class GitSetup
{
    /// <summary>The server's git (<see cref="GitMirror"/>), with a home of its own under the data directory.</summary>
    public static IServiceCollection AddGit(this IServiceCollection services) =>
        services.AddSingleton(sp => new GitMirror(Path.Combine(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions>>().Value.DataDirectory, "git-home")));
}
