using System.ComponentModel.DataAnnotations;
using Covibe.Execution.Egress;

namespace Covibe.Server.Features.Egress;

/// <summary>
/// <c>Covibe:Egress</c>: where teams' code on this machine may connect. The operator sets the <see cref="Default"/> mode
/// and the <see cref="Ceiling"/> (the most open mode a team owner may choose), and the default allowlist.
/// </summary>
public sealed class EgressOptions : IValidatableObject
{
    public const string Section = "Covibe:Egress";
    public const string ModePattern = "^(open|allowlist|none)$";

    /// <summary>The mode of a team whose owner chose none: <c>open</c>, <c>allowlist</c> or <c>none</c>.</summary>
    [RegularExpression(ModePattern, ErrorMessage = "Covibe:Egress:Default must be open, allowlist or none.")]
    public string Default { get; set; } = "open";

    /// <summary>The most open mode a team may have (a team's choice above it is held to it).</summary>
    [RegularExpression(ModePattern, ErrorMessage = "Covibe:Egress:Ceiling must be open, allowlist or none.")]
    public string Ceiling { get; set; } = "open";

    /// <summary>The allowlist of a team that set none of its own: Claude's API, the package registries, GitHub.</summary>
    public List<string> Allow { get; set; } =
    [
        "api.anthropic.com", "statsig.anthropic.com", "registry.npmjs.org", "pypi.org", "files.pythonhosted.org",
        "github.com", "*.github.com", "*.githubusercontent.com",
    ];

    /// <summary>The egress proxy's port on this machine (teams with an allowlist reach it; kept across restarts, as running agents were told it).</summary>
    [Range(0, 65535)]
    public int ProxyPort { get; set; } = 3129;

    /// <summary>Names the proxy resolves to a fixed address instead of asking DNS (<c>Resolve:git.internal=10.1.2.3</c>: a host without a DNS name).</summary>
    public Dictionary<string, string> Resolve { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public EgressMode DefaultMode => Parse(Default);

    public EgressMode CeilingMode => Parse(Ceiling);

    public static EgressMode Parse(string mode) => mode switch
    {
        "none" => EgressMode.None,
        "allowlist" => EgressMode.Allowlist,
        _ => EgressMode.Open,
    };

    public static string Name(EgressMode mode) => mode.ToString().ToLowerInvariant();

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var entry in Allow)
        {
            if (EgressPolicy.Validate(entry) is { } problem)
            {
                yield return new ValidationResult($"Covibe:Egress:Allow: {problem}.");
            }
        }
        foreach (var (name, address) in Resolve)
        {
            if (!System.Net.IPAddress.TryParse(address, out _))
            {
                yield return new ValidationResult($"Covibe:Egress:Resolve:{name} must be an IP address, not '{address}'.");
            }
        }
    }
}
