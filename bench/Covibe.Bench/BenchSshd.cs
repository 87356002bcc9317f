using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

/// <summary>
/// A real sshd on a loopback port for a benchmark's "VM": its own host key and authorized key in the work directory, as
/// the account <c>covibe-vm</c> when the benchmark runs as root (made if missing, like a fresh VM account), else as the
/// current user. Disposing stops it.
/// </summary>
sealed class BenchSshd : IAsyncDisposable
{
    private readonly Process _sshd;

    private BenchSshd(Process sshd, int port, string user, string privateKey, string fingerprint)
    {
        _sshd = sshd;
        (Port, User, PrivateKey, HostKeyFingerprint) = (port, user, privateKey, fingerprint);
    }

    public int Port { get; }
    public string User { get; }
    public string PrivateKey { get; }
    public string HostKeyFingerprint { get; }

    public static async Task<BenchSshd> StartAsync(string work)
    {
        var dir = Path.Combine(work, "sshd");
        Directory.CreateDirectory(dir);
        var user = Environment.UserName;
        if (user == "root")
        {
            user = "covibe-vm";
            if (await Measure.RunAsync("id", "-u", user) is null)
            {
                await Measure.RunAsync("useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", user);
            }
        }
        await Measure.RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(dir, "host_key"));
        await Measure.RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(dir, "client_key"));
        var privateKey = await File.ReadAllTextAsync(Path.Combine(dir, "client_key"));
        File.Copy(Path.Combine(dir, "client_key.pub"), Path.Combine(dir, "authorized_keys"));
        File.Delete(Path.Combine(dir, "client_key"));
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(work, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(Path.Combine(dir, "authorized_keys"), (UnixFileMode)0b110_100_100);
        var fingerprint = (await Measure.RunAsync("ssh-keygen", "-l", "-E", "sha256", "-f", Path.Combine(dir, "host_key.pub")))!.Split(' ')[1];
        var port = Measure.FreePort();
        var config = Path.Combine(dir, "sshd_config");
        await File.WriteAllTextAsync(config, $"Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n" +
            $"AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nLogLevel ERROR\n");
        Directory.CreateDirectory("/run/sshd");
        var sshd = Process.Start(new ProcessStartInfo("/usr/sbin/sshd", ["-D", "-e", "-f", config]) { RedirectStandardError = true })!;
        for (var i = 0; i < 300; i++)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                break;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }
        return new BenchSshd(sshd, port, user, privateKey, fingerprint);
    }

    public async ValueTask DisposeAsync()
    {
        _sshd.Kill(entireProcessTree: true);
        await _sshd.WaitForExitAsync();
        _sshd.Dispose();
    }
}
