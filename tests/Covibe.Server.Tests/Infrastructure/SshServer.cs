using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A real OpenSSH server (Debian's openssh-server) on a free loopback port with its own host key
/// and one authorized client key, for the tests' VMs. Started and stopped by the fixture.
/// </summary>
public sealed class SshServer : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "covibe-sshd-" + Guid.NewGuid().ToString("N")[..8]);
    private Process? _sshd;

    public int Port { get; private set; }
    /// <summary>
    /// As root, a dedicated user with /bin/sh, like a fresh VM account: the machine's own root
    /// may have shell start-up files (pyenv, ...) that are slow or block non-interactive logins.
    /// </summary>
    public string User { get; private set; } = Environment.UserName;
    public string ClientPrivateKey { get; private set; } = "";
    public string HostKeyFingerprint { get; private set; } = "";

    /// <summary>The VM user's password (set when the fixture runs as root and makes its own user).</summary>
    public string? Password { get; private set; }

    /// <summary>A directory the VM user can read, holding the fake claude (the checkout may not be readable to it).</summary>
    public string ToolsDirectory => Path.Combine(_directory, "bin");

    /// <summary>The <c>covibe</c> launcher copied where the VM user can run it.</summary>
    public string Covibe => Path.Combine(ToolsDirectory, "covibe-bin", "covibe");

    private static readonly Lazy<Task<string>> RunPassword = new(async () =>
    {
        var password = "pw-" + Guid.NewGuid().ToString("N");
        using var chpasswd = Process.Start(new ProcessStartInfo("chpasswd") { RedirectStandardInput = true, RedirectStandardError = true })!;
        await chpasswd.StandardInput.WriteLineAsync($"covibe-vm:{password}");
        chpasswd.StandardInput.Close();
        await chpasswd.WaitForExitAsync();
        chpasswd.ExitCode.ShouldBe(0, await chpasswd.StandardError.ReadToEndAsync());
        return password;
    });

    public async Task InitializeAsync()
    {
        File.Exists("/usr/sbin/sshd").ShouldBeTrue("/usr/sbin/sshd is missing: install Debian's openssh-server (./test.sh does).");
        Directory.CreateDirectory(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (Environment.UserName == "root")
        {
            const string testUser = "covibe-vm";
            using (var id = Process.Start(new ProcessStartInfo("id", ["-u", testUser]) { RedirectStandardOutput = true, RedirectStandardError = true })!)
            {
                await id.WaitForExitAsync();
                if (id.ExitCode != 0)
                {
                    // '*': no password, but not locked ('!'), which sshd would refuse even for keys.
                    await RunAsync("useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", testUser);
                }
            }
            User = testUser;
            // A fresh password each run, for the password-VM tests: one for the whole test run, set once, since every
            // class using this fixture shares the account (a second password would lock out the first class's tests).
            Password = await RunPassword.Value;
        }
        await RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "covibe-test-host", "-f", Path.Combine(_directory, "host_key"));
        await RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "covibe-test-client", "-f", Path.Combine(_directory, "client_key"));
        ClientPrivateKey = await File.ReadAllTextAsync(Path.Combine(_directory, "client_key"));
        File.Copy(Path.Combine(_directory, "client_key.pub"), Path.Combine(_directory, "authorized_keys"));
        // sshd reads authorized_keys as the user logging in: the directory and the (public) keys must be readable.
        File.SetUnixFileMode(_directory, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(Path.Combine(_directory, "authorized_keys"), (UnixFileMode)0b110_100_100);
        // The test keeps the key only in memory from here on, as the server must.
        File.Delete(Path.Combine(_directory, "client_key"));
        Directory.CreateDirectory(ToolsDirectory);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fake-claude", "claude"), Path.Combine(ToolsDirectory, "claude"));
        // `covibe` itself, for the mock agent on the VM (as an operator would install it there).
        var covibe = Path.Combine(ToolsDirectory, "covibe-bin");
        Directory.CreateDirectory(covibe);
        foreach (var file in Directory.GetFiles(AppContext.BaseDirectory).Where(f => f.EndsWith(".dll", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("covibe", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(covibe, Path.GetFileName(file)));
        }
        foreach (var entry in Directory.GetFileSystemEntries(ToolsDirectory, "*", SearchOption.AllDirectories).Append(ToolsDirectory))
        {
            File.SetUnixFileMode(entry, (UnixFileMode)0b111_101_101);
        }
        var fingerprint = await RunAsync("ssh-keygen", "-l", "-E", "sha256", "-f", Path.Combine(_directory, "host_key.pub"));
        HostKeyFingerprint = fingerprint.Split(' ')[1];
        Port = PostgresServer.FreePort();
        var config = Path.Combine(_directory, "sshd_config");
        await File.WriteAllTextAsync(config, $"""
            Port {Port}
            ListenAddress 127.0.0.1
            HostKey {_directory}/host_key
            PidFile {_directory}/sshd.pid
            AuthorizedKeysFile {_directory}/authorized_keys
            StrictModes no
            UsePAM no
            PasswordAuthentication yes
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            MaxStartups 200
            LogLevel ERROR
            """);
        Directory.CreateDirectory("/run/sshd");
        _sshd = Process.Start(new ProcessStartInfo("/usr/sbin/sshd", ["-D", "-e", "-f", config]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        await PostgresServer.WaitListeningAsync(Port, _sshd);
    }

    /// <summary>Lets <paramref name="publicKey"/> log in as <see cref="User"/> too (a deploy key added at the forge).</summary>
    public void Authorize(string publicKey) => File.AppendAllText(Path.Combine(_directory, "authorized_keys"), publicKey.Trim() + "\n");

    /// <summary>
    /// A bare copy of <paramref name="source"/> that <see cref="User"/> owns, served over SSH like a private repository at a
    /// forge: its <c>ssh://</c> address and its path on this machine.
    /// </summary>
    public async Task<(string Url, string Path)> ServeRepositoryAsync(GitRepo source)
    {
        var repositories = Path.Combine(_directory, "repos");
        Directory.CreateDirectory(repositories, (UnixFileMode)0b111_101_101);
        var path = Path.Combine(repositories, $"app-{Guid.NewGuid().ToString("N")[..6]}.git");
        await RunAsync("git", "clone", "-q", "--bare", source.Path, path);
        if (Environment.UserName == "root")
        {
            await RunAsync("chown", "-R", User, path);
        }
        return ($"ssh://{User}@127.0.0.1:{Port}{path}", path);
    }

    public async Task DisposeAsync()
    {
        if (_sshd is { HasExited: false })
        {
            _sshd.Kill(entireProcessTree: true);
            await _sshd.WaitForExitAsync();
        }
        _sshd?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private static async Task<string> RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.ShouldBe(0, error);
        return output;
    }
}
