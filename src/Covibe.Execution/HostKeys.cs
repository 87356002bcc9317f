using System.Diagnostics;
using System.Security.Cryptography;

namespace Covibe.Execution;

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
            return new HostKey($"{parts[0]} {parts[1]} {parts[2]}", parts[1], "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('='));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
