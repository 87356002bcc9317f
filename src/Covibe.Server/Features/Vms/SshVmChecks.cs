using Covibe.Execution;
using Covibe.Server.Http;
using Covibe.Web;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Vms;

/// <summary>What registering or changing an SSH VM checks before anything is kept: the host key the owner confirmed, and a real login.</summary>
internal static class SshVmChecks
{
    /// <summary>
    /// Scans the host's keys; the request must name one of their fingerprints, which the owner checked on the VM, in any form
    /// <see cref="HostKeys.ParseConfirmed"/> takes (as offered here, <c>ssh-ed25519 SHA256:...</c>, or bare). Answers the matching keys
    /// and the bare fingerprint.
    /// </summary>
    public static async Task<(IReadOnlyList<HostKey> Keys, string Fingerprint)> ConfirmHostKeyAsync(
        string host, int port, string? confirmed, CancellationToken cancellationToken)
    {
        var keys = await HostKeys.ScanAsync(host, port, cancellationToken);
        if (keys.Count == 0)
        {
            throw new RequestRefusedException(Refusal.Unreachable, "vm-unreachable", "VM not reachable",
                $"No SSH server answered at {host}:{port}. Check the host and port, and that sshd runs and the server can reach it.");
        }
        var fingerprints = keys.Select(k => $"{k.Type} {k.Fingerprint}").ToArray();
        var matching = HostKeys.Matching(keys, confirmed);
        if (matching.Count == 0)
        {
            var refusal = new RequestRefusedException(Refusal.Conflict,
                confirmed is null ? "confirm-host-key" : "host-key-mismatch",
                confirmed is null ? "Confirm the VM's host key" : "Host key does not match",
                (confirmed is null ? "" : $"The VM does not present a host key with fingerprint {PrintableText.Of(confirmed, 120)}. ") +
                    "Compare these fingerprints with the VM's own (run `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on it), " +
                    "then send the request again with 'hostKeyFingerprint' set to the matching one, as listed here or as SHA256:... alone.");
            refusal.Extensions["fingerprints"] = fingerprints;
            throw refusal;
        }
        return (matching, matching[0].Fingerprint);
    }

    /// <summary>Logs in to the VM once (<c>true</c> over SSH); a refusal in words the owner can act on when it does not work.</summary>
    public static async Task CheckLoginAsync(VmConnector connector, SshClient ssh, SshTarget target, string method, byte[] credential, CancellationToken cancellationToken)
    {
        string? error;
        var refused = false;
        try
        {
            var login = await connector.TargetAsync(target, method, credential, cancellationToken);
            var result = await ssh.RunAsync(login, ["true"], null, TimeSpan.FromSeconds(20), cancellationToken);
            error = result.ExitCode == 0 ? null : SshClient.Explain(result, login);
            refused = result.Stderr.Contains("Permission denied", StringComparison.Ordinal);
        }
        catch (SshException e)
        {
            error = e.Message;
        }
        // The VM said no to the credential: the owner's to fix. Anything else (the connection dropped, a timeout) is the way there.
        if (error is not null)
        {
            throw refused
                ? new RequestRefusedException(Refusal.Unprocessable, "vm-login-failed", "The VM refused the login",
                    $"{error} Nothing was saved; send the request again with the right user and {(method == "password" ? "password" : "private key")}.")
                : new RequestRefusedException(Refusal.Unreachable, "vm-unreachable", "VM not reachable", $"Logging in to check the credential failed: {error} Nothing was saved; try again.");
        }
    }

}
