using Covibe.Server.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// Each team's preview origin (<c>PREVIEW_URL</c> with the team's id in <c>{team}</c>), and the reverse: which
/// team a request to the preview's listener is for, from its host name.
/// </summary>
public sealed class PreviewUrls(IOptions<PreviewsOptions> options, IOptions<ServerOptions> server, IServer listener)
{
    private string? _pattern;
    private (string Prefix, string Suffix) _host; // the origin's host name around {team}, for TeamOf

    /// <summary>This server's own address (<c>PUBLIC_URL</c>, else the first it listens on), without a trailing slash.</summary>
    public string ServerOrigin =>
        (server.Value.PublicUrl is { Length: > 0 } configured
            ? configured
            : listener.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://127.0.0.1:5180")
        .TrimEnd('/');

    /// <summary>Called by the preview's listener once it knows its port (a port of 0 is chosen when it starts).</summary>
    internal void Listening(int port)
    {
        const string Marker = "teammarker";
        var pattern = string.IsNullOrWhiteSpace(options.Value.PublicUrl)
            ? $"http://{PreviewsOptions.TeamPlaceholder}.preview.localhost:{port}"
            : options.Value.PublicUrl.TrimEnd('/');
        var template = new Uri(pattern.Replace(PreviewsOptions.TeamPlaceholder, Marker, StringComparison.Ordinal)).Host;
        var at = template.IndexOf(Marker, StringComparison.Ordinal);
        _host = (template[..at], template[(at + Marker.Length)..]);
        _pattern = pattern;
    }

    private string Pattern => _pattern ?? throw new InvalidOperationException("The preview's listener has not started.");

    /// <summary>The team's preview origin, like <c>http://TEAM.preview.localhost:5181</c>, with no trailing slash.</summary>
    public string Origin(string teamId) => Pattern.Replace(PreviewsOptions.TeamPlaceholder, teamId, StringComparison.Ordinal);

    /// <summary>The team a preview request is for, from its <c>Host</c>; null when the name is not one of ours.</summary>
    public string? TeamOf(string host)
    {
        var (prefix, suffix) = _pattern is null ? throw new InvalidOperationException("The preview's listener has not started.") : _host;
        var name = (host.StartsWith('[') ? host : host.Split(':')[0]).ToLowerInvariant();
        if (name.Length <= prefix.Length + suffix.Length || !name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(suffix, StringComparison.Ordinal))
        {
            return null;
        }
        var team = name[prefix.Length..^suffix.Length];
        return team.Length <= 63 && team.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c)) ? team : null;
    }
}
