using Covibe.Server.Features.Auth;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Secrets;

/// <summary><c>Covibe:Secrets</c>; seed 000's <c>ENCRYPTION_KEY</c> maps onto <see cref="EncryptionKey"/>.</summary>
public sealed class SecretsOptions
{
    public const string Section = "Covibe:Secrets";
    public const int MinimumKeyLength = 32;

    /// <summary>The key new secrets are encrypted with. Required outside development; generated once (0600) in the data directory with --dev.</summary>
    public string? EncryptionKey { get; set; }

    /// <summary>Earlier keys, comma-separated, still accepted for reading while <c>covibe secrets rotate</c> re-encrypts (<c>ENCRYPTION_KEYS_PREVIOUS</c>).</summary>
    public string? PreviousKeys { get; set; }
}

internal sealed class DevelopmentEncryptionKey(IHostEnvironment environment, IOptions<ServerOptions> server) : IPostConfigureOptions<SecretsOptions>
{
    public void PostConfigure(string? name, SecretsOptions options)
    {
        if (!string.IsNullOrEmpty(options.EncryptionKey) || !environment.IsDevelopment())
        {
            return;
        }
        options.EncryptionKey = DevelopmentSecrets.ReadOrCreate(server.Value.DataDirectory, "encryption-key");
    }
}

internal sealed class SecretsOptionsValidator : IValidateOptions<SecretsOptions>
{
    public ValidateOptionsResult Validate(string? name, SecretsOptions options)
    {
        if (options.EncryptionKey is not { Length: >= SecretsOptions.MinimumKeyLength })
        {
            return ValidateOptionsResult.Fail(
                $"ENCRYPTION_KEY (Covibe:Secrets:EncryptionKey) must be set to at least {SecretsOptions.MinimumKeyLength} random characters outside development, " +
                "for example: export ENCRYPTION_KEY=\"$(openssl rand -base64 48)\". For a local trial run `covibe serve --dev` instead.");
        }
        var previous = SecretBox.Split(options.PreviousKeys);
        return previous.Any(k => k.Length < SecretsOptions.MinimumKeyLength)
            ? ValidateOptionsResult.Fail($"Every key in ENCRYPTION_KEYS_PREVIOUS (Covibe:Secrets:PreviousKeys) must be at least {SecretsOptions.MinimumKeyLength} characters.")
            : ValidateOptionsResult.Success;
    }
}
