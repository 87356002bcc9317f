using System.ComponentModel.DataAnnotations;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// <c>Covibe:Preview</c>: the shared preview. <c>PREVIEW_URL</c> maps to <see cref="PublicUrl"/>. Seed 003's
/// port range, resource limits (<c>Covibe:Containers:Preview*</c>) and health checks apply.
/// </summary>
public sealed class PreviewsOptions : IValidatableObject
{
    public const string Section = "Covibe:Preview";
    public const string TeamPlaceholder = "{team}";

    /// <summary>
    /// Where the preview's own web server listens: a separate origin from the web client and the API. Unset: the
    /// server's first address with the next port (<c>http://127.0.0.1:5181</c> beside the default 5180; a port of 0
    /// stays 0, a free one).
    /// </summary>
    public string? Listen { get; set; }

    /// <summary>The address to listen on: <see cref="Listen"/>, else one beside <paramref name="serverUrls"/> (the server's <c>urls</c> setting).</summary>
    public Uri ListenAddress(string? serverUrls)
    {
        if (!string.IsNullOrWhiteSpace(Listen))
        {
            return new Uri(Listen);
        }
        var first = (serverUrls ?? "http://127.0.0.1:5180").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "http://127.0.0.1:5180";
        var server = new Uri(first.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal));
        return new UriBuilder("http", server.Host, server.Port == 0 ? 0 : server.Port + 1).Uri;
    }

    /// <summary>
    /// <c>PREVIEW_URL</c>: how members reach a team's preview, with <c>{team}</c> in the host name, so every
    /// team's preview has its own origin (its own cookies). Unset: <c>http://{team}.preview.localhost:PORT</c>
    /// with <see cref="Listen"/>'s port (browsers resolve <c>*.localhost</c> to this machine). Behind a proxy:
    /// <c>https://{team}.preview.example.com</c> with a wildcard DNS name and certificate.
    /// </summary>
    public string? PublicUrl { get; set; }

    /// <summary>Seed 003's preview port range: each deploy serves on a free port from it, on 127.0.0.1.</summary>
    [Range(1024, 65535)] public int PortMin { get; set; } = 5000;
    [Range(1024, 65535)] public int PortMax { get; set; } = 8999;

    /// <summary>How often the server looks at the branch itself (<c>git ls-remote</c>), for pushes whose webhook never came; 0: never.</summary>
    [Range(0, 86400)] public int CheckSeconds { get; set; } = 60;

    /// <summary>How long a build may take; how long a started version has to answer its health check.</summary>
    [Range(1, 86400)] public int BuildTimeoutSeconds { get; set; } = 900;
    [Range(1, 3600)] public int StartTimeoutSeconds { get; set; } = 120;

    /// <summary>How long the replaced version keeps serving requests already under way before it is stopped.</summary>
    [Range(0, 600)] public int DrainSeconds { get; set; } = 5;

    /// <summary>Repositories on this machine's disk (<c>file://</c> or a path). Off: a team could read the server's own repositories.</summary>
    public bool AllowLocalRepositories { get; set; }

    /// <summary>Deploys kept (directories and logs) besides the live one.</summary>
    [Range(1, 1000)] public int KeepDeploys { get; set; } = 10;

    /// <summary>How long a one-time link to open the preview is valid, and how long the browser stays signed in to the preview after.</summary>
    [Range(5, 3600)] public int LinkSeconds { get; set; } = 60;
    [Range(1, 720)] public int SessionHours { get; set; } = 12;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (PortMin > PortMax)
        {
            yield return new ValidationResult("Covibe:Preview:PortMin must not be above PortMax.", [nameof(PortMin)]);
        }
        if (!string.IsNullOrWhiteSpace(Listen) && (!Uri.TryCreate(Listen, UriKind.Absolute, out var listen) || listen.Scheme != Uri.UriSchemeHttp))
        {
            yield return new ValidationResult("Covibe:Preview:Listen must be an http:// address to listen on, like http://127.0.0.1:5181.", [nameof(Listen)]);
        }
        if (!string.IsNullOrWhiteSpace(PublicUrl))
        {
            var sample = PublicUrl.Replace(TeamPlaceholder, "team", StringComparison.Ordinal);
            if (!PublicUrl.Contains(TeamPlaceholder, StringComparison.Ordinal) || !Uri.TryCreate(sample, UriKind.Absolute, out var url)
                || url.Scheme is not ("http" or "https") || !url.Host.Contains("team", StringComparison.Ordinal) || url.AbsolutePath != "/")
            {
                yield return new ValidationResult(
                    "PREVIEW_URL (Covibe:Preview:PublicUrl) must be an http(s) origin with {team} in its host name, like https://{team}.preview.example.com: each team's preview needs its own origin.",
                    [nameof(PublicUrl)]);
            }
        }
    }
}
