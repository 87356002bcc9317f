using System.ComponentModel.DataAnnotations;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Auth;

/// <summary><c>Covibe:Auth</c>; <c>JWT_SECRET</c> maps onto <see cref="JwtSecret"/>.</summary>
public sealed class AuthOptions
{
    public const string Section = "Covibe:Auth";
    public const int MinimumSecretLength = 32;

    /// <summary>HS256 signing key. Required outside development; in development it is generated once and kept (0600) in the data directory.</summary>
    public string? JwtSecret { get; set; }

    [Range(1, 1440)]
    public int AccessTokenMinutes { get; set; } = 15;

    [Range(1, 365)]
    public int RefreshTokenDays { get; set; } = 30;

    /// <summary>PBKDF2-SHA256 iterations for new password hashes (OWASP 2023: 600,000).</summary>
    [Range(100_000, 10_000_000)]
    public int PasswordIterations { get; set; } = 600_000;

    /// <summary>Login, join and refresh attempts allowed per client address per minute.</summary>
    [Range(1, 100_000)]
    public int AttemptsPerMinute { get; set; } = 30;
}

/// <summary>Fills <see cref="AuthOptions.JwtSecret"/> in development from a file it creates once.</summary>
internal sealed class DevelopmentJwtSecret(IHostEnvironment environment, IOptions<ServerOptions> server) : IPostConfigureOptions<AuthOptions>
{
    public void PostConfigure(string? name, AuthOptions options)
    {
        if (!string.IsNullOrEmpty(options.JwtSecret) || !environment.IsDevelopment())
        {
            return;
        }
        options.JwtSecret = DevelopmentSecrets.ReadOrCreate(server.Value.DataDirectory, "jwt-secret");
    }
}

internal sealed class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthOptions options) =>
        options.JwtSecret is { Length: >= AuthOptions.MinimumSecretLength }
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(
                $"JWT_SECRET (Covibe:Auth:JwtSecret) must be set to at least {AuthOptions.MinimumSecretLength} random characters outside development, " +
                "for example: export JWT_SECRET=\"$(openssl rand -base64 48)\". For a local trial run `covibe serve --dev` instead.");
}
