using System.Diagnostics;
using System.Security.Cryptography;

namespace Covibe.Execution.Ssh;

/// <summary>A host's SSH key as known_hosts holds it, with the fingerprint a user can compare.</summary>
public sealed record HostKey(string KnownHostsLine, string Type, string Fingerprint);

/// <summary>Asks a host for its SSH host keys (<c>ssh-keyscan</c>), to pin the one the owner confirms.</summary>
public static class HostKeys
{
    public static async Task<IReadOnlyList<HostKey>> ScanAsync(string host, int port, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("ssh-keyscan") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Host and port were validated by the caller; they are arguments, never shell text.
        foreach (var a in (string[])["-T", "5", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), host])
        {
            info.ArgumentList.Add(a);
        }
        using var process = Process.Start(info) ?? throw new IOException("Could not run ssh-keyscan; install openssh-client.");
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(line => !line.StartsWith('#'))
            .Select(Parse)
            .OfType<HostKey>()];
    }

    /// <summary>An SSH key's SHA256 fingerprint as OpenSSH prints it (<c>SHA256:</c> and unpadded base64 of the key's blob).</summary>
    public static string Fingerprint(ReadOnlySpan<byte> blob) => "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');

    public static HostKey? Parse(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 3)
        {
            return null;
        }
        try
        {
            var blob = Convert.FromBase64String(parts[2]);
            return new HostKey($"{parts[0]} {parts[1]} {parts[2]}", parts[1], Fingerprint(blob));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// A fingerprint as a user confirms it: bare (<c>SHA256:...</c>), as the server offers it (<c>ssh-ed25519 SHA256:...</c>),
    /// or as <c>ssh-keygen -l</c> prints it (<c>256 SHA256:... comment (ED25519)</c>). Null when it holds no SHA256 fingerprint.
    /// </summary>
    public static (string? Type, string Fingerprint)? ParseConfirmed(string? value)
    {
        var parts = (value ?? "").Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var fingerprint = parts.FirstOrDefault(p => p.StartsWith("SHA256:", StringComparison.Ordinal) && p.Length > 7);
        if (fingerprint is null)
        {
            return null;
        }
        var type = parts[0] != fingerprint && (parts[0].StartsWith("ssh-", StringComparison.Ordinal) || parts[0].StartsWith("ecdsa-", StringComparison.Ordinal)
            || parts[0].StartsWith("sk-", StringComparison.Ordinal)) ? parts[0] : null;
        return (type, fingerprint);
    }

    /// <summary>The keys among <paramref name="keys"/> that a confirmed fingerprint (any form <see cref="ParseConfirmed"/> takes) names.</summary>
    public static IReadOnlyList<HostKey> Matching(IEnumerable<HostKey> keys, string? confirmed) =>
        ParseConfirmed(confirmed) is { } c ? [.. keys.Where(k => k.Fingerprint == c.Fingerprint && (c.Type is null || k.Type == c.Type))] : [];
}
