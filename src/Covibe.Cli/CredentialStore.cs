using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Covibe.Runner;

namespace Covibe.Cli;

/// <summary>What <c>covibe login</c> remembers.</summary>
public sealed record Credentials(
    string Server,
    string UserId,
    string UserName,
    string TeamId,
    string TeamName,
    string AccessToken,
    DateTime AccessTokenExpiresAt,
    string RefreshToken);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Credentials))]
[JsonSerializable(typeof(RunnerState))]
internal sealed partial class CliJsonContext : JsonSerializerContext;

/// <summary>
/// Keeps the login (and a runner's credential) in <c>$COVIBE_CONFIG_DIR</c> (default <c>~/.config/covibe</c>), encrypted with
/// AES-256-GCM under a key in a separate 0600 file. Tokens are never on disk in plaintext; this
/// guards against copies of the file (backups, a pasted config), not against another process of
/// the same user, which is what an OS keyring would add.
/// </summary>
public sealed class CredentialStore(string directory)
{
    private const int NonceBytes = 12;
    private const int TagBytes = 16;

    public static CredentialStore Default()
    {
        var configured = Environment.GetEnvironmentVariable("COVIBE_CONFIG_DIR");
        if (!string.IsNullOrEmpty(configured))
        {
            return new CredentialStore(configured);
        }
        var xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        var root = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config") : xdg;
        return new CredentialStore(Path.Combine(root, "covibe"));
    }

    public string Directory { get; } = directory;

    private string CredentialsPath => Path.Combine(Directory, "credentials");
    private string KeyPath => Path.Combine(Directory, "key");

    public Credentials? Load() => Load(CredentialsPath, CliJsonContext.Default.Credentials);

    public void Save(Credentials credentials) => Save(CredentialsPath, credentials, CliJsonContext.Default.Credentials);

    /// <summary>The runner's state (<c>runner</c> in the directory, 0600, encrypted like the login).</summary>
    public RunnerState? LoadRunner() => Load(Path.Combine(Directory, "runner"), CliJsonContext.Default.RunnerState);

    public void SaveRunner(RunnerState state) => Save(Path.Combine(Directory, "runner"), state, CliJsonContext.Default.RunnerState);

    private T? Load<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) where T : class
    {
        if (!File.Exists(path) || !File.Exists(KeyPath))
        {
            return null;
        }
        var blob = File.ReadAllBytes(path);
        if (blob.Length < NonceBytes + TagBytes)
        {
            return null;
        }
        var key = File.ReadAllBytes(KeyPath);
        var plain = new byte[blob.Length - NonceBytes - TagBytes];
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(blob.AsSpan(0, NonceBytes), blob.AsSpan(NonceBytes + TagBytes), blob.AsSpan(NonceBytes, TagBytes), plain);
            return JsonSerializer.Deserialize(plain, type);
        }
        catch (CryptographicException)
        {
            return null;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
    }

    /// <summary>Encrypts <paramref name="value"/> into <paramref name="path"/> (0600), through a temporary file: a crash never leaves half of it.</summary>
    private void Save<T>(string path, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        System.IO.Directory.CreateDirectory(Directory);
        File.SetUnixFileMode(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (!File.Exists(KeyPath))
        {
            WritePrivate(KeyPath, RandomNumberGenerator.GetBytes(32));
        }
        var key = File.ReadAllBytes(KeyPath);
        var plain = JsonSerializer.SerializeToUtf8Bytes(value, type);
        var blob = new byte[NonceBytes + TagBytes + plain.Length];
        RandomNumberGenerator.Fill(blob.AsSpan(0, NonceBytes));
        using (var aes = new AesGcm(key, TagBytes))
        {
            aes.Encrypt(blob.AsSpan(0, NonceBytes), plain, blob.AsSpan(NonceBytes + TagBytes), blob.AsSpan(NonceBytes, TagBytes));
        }
        CryptographicOperations.ZeroMemory(plain);
        var temp = path + ".tmp";
        WritePrivate(temp, blob);
        File.Move(temp, path, overwrite: true);
    }

    public void Delete()
    {
        File.Delete(CredentialsPath);
    }

    private static void WritePrivate(string path, byte[] content)
    {
        using var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        stream.Write(content);
    }
}
