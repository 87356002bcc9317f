using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Covibe.Execution.Egress;

namespace Covibe.Execution.Local;

/// <summary>What network sandboxed programs get.</summary>
public enum SandboxNetworking
{
    /// <summary>
    /// A network namespace of their own, connected to the internet through slirp4netns: not to this machine
    /// (its loopback services: the server's listeners, previews, databases; its own addresses) nor, unless
    /// allowed, to private and link-local networks. The default when the server runs as root.
    /// </summary>
    Internet,

    /// <summary>This machine's own network namespace: everything this machine reaches, its loopback included.</summary>
    Host,

    /// <summary>No network: a loopback of their own only.</summary>
    None,
}

/// <summary>
/// The launcher that gives a bubblewrap sandbox the internet without this machine: bubblewrap starts in a new
/// network namespace and waits (<c>--block-fd</c>) while slirp4netns connects it, with this machine's loopback
/// disabled, and blackhole routes are added there for this machine's addresses and the private ranges; then the
/// sandboxed program runs. The launcher lives as long as the sandbox and ends slirp4netns with it. It runs with the
/// server's privileges and none of the member's input (every argument is positional, never interpolated).
/// </summary>
public static class SandboxNetwork
{
    /// <summary>
    /// <c>$1</c> a directory of the server's for the handshake (removed once connected; with a team's egress policy, its
    /// <c>egress</c> rules and <c>source</c> address are there, <see cref="EgressRules.Sandbox"/>), then the CIDRs to blackhole,
    /// then <c>--</c>, then bubblewrap's argv (with <c>--unshare-net --info-fd 3 --block-fd 4</c>). Bubblewrap replaces
    /// the launcher (the same PID, in the foreground: signals reach the program as before); a helper beside it connects
    /// the namespace, and slirp4netns ends when the last process of the sandbox has ended (its <c>--exit-fd</c> is a
    /// FIFO only they hold open for writing).
    /// </summary>
    public const string Script = """
        st=$1; shift
        # The launcher's own programs come from the system's directories, whatever PATH the job has (iptables-restore is in
        # sbin, which a job's PATH may lack); the job gets its own PATH back when it starts.
        job_path=${PATH-}; had_path=${PATH+x}
        PATH=/usr/sbin:/usr/bin:/sbin:/bin
        routes=""
        while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do routes="$routes $1"; shift; done
        shift
        mkfifo "$st/go" "$st/alive" || exit 125
        exec 4<>"$st/go" 6<>"$st/alive"
        (
          exec 6>&-
          n=0
          while :; do
            pid=$(sed -n 's/.*"child-pid": *\([0-9][0-9]*\).*/\1/p' "$st/info" 2>/dev/null)
            [ -n "$pid" ] && break
            [ "$n" -gt 1000 ] && exit 1
            n=$((n + 1)); sleep 0.01
          done
          # A team with an egress policy: its connections leave only from its own loopback address (the proxy knows the team
          # by it, and nothing beyond this machine's loopback can be reached from there), and only to the proxy (the rules below).
          if [ -s "$st/egress" ]; then out="--outbound-addr=$(cat "$st/source")"; else out=--disable-host-loopback; fi
          slirp4netns --mtu=65520 "$out" --ready-fd 5 --exit-fd 8 "$pid" tap0 5>"$st/ready" 8<"$st/alive" &
          n=0
          until [ -s "$st/ready" ] || [ "$n" -gt 1000 ]; do n=$((n + 1)); sleep 0.01; done
          # Only tap0 is configured here: bubblewrap sets up the namespace's loopback itself, meanwhile. One `ip` for all of
          # it (a batch stops at its first error, as a chain of && did): starting a program is what a start costs.
          {
            printf '%s\n' "link set tap0 mtu 65520 up" "addr add 10.0.2.100/24 dev tap0" "route add default via 10.0.2.2 dev tap0"
            for route in $routes; do printf 'route add blackhole %s\n' "$route"; done
          } > "$st/ip"
          # Not connected as it must be (its routes above all): the sandbox ends before its program starts.
          nsenter -t "$pid" -n ip -batch "$st/ip" || { kill -KILL "$pid"; exit 1; }
          if [ -s "$st/egress" ]; then nsenter -t "$pid" -n iptables-restore < "$st/egress" || { kill -KILL "$pid"; exit 1; }; fi
          printf x >&4
          rm -rf "$st"
        ) </dev/null >/dev/null 2>&1 &
        if [ -n "$had_path" ]; then PATH=$job_path; else unset PATH; fi
        exec "$@" 3>"$st/info"
        """;

    public const string ProgramName = "covibe-net";

    /// <summary>Where slirp4netns answers DNS inside the namespace.</summary>
    public const string NameServer = "10.0.2.3";

    /// <summary>Private, shared and link-local IPv4 ranges (cloud metadata lives at 169.254.169.254), and benchmarking 198.18/15.</summary>
    public static readonly IReadOnlyList<string> PrivateRanges = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "198.18.0.0/15"];

    /// <summary>
    /// The routes sandboxed programs must not take: this machine's own IPv4 addresses, and (unless
    /// <paramref name="allowPrivate"/>) private, shared and link-local ranges (cloud metadata lives at 169.254.169.254).
    /// slirp4netns's own 10.0.2.0/24 stays reachable: its route is more specific.
    /// </summary>
    public static List<string> BlockedRoutes(bool allowPrivate)
    {
        var routes = allowPrivate ? new List<string>() : [.. PrivateRanges];
        foreach (var address in MachineAddresses())
        {
            if (address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(address))
            {
                routes.Add(address + "/32");
            }
        }
        return routes;
    }

    /// <summary>
    /// This machine's own addresses, on every interface. Interfaces that come and go while they are listed (containers'
    /// bridges and veths) can make the runtime's listing throw; it is read again, a few times.
    /// </summary>
    public static List<IPAddress> MachineAddresses()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return [.. NetworkInterface.GetAllNetworkInterfaces().SelectMany(nic => nic.GetIPProperties().UnicastAddresses).Select(a => a.Address)];
            }
            catch (Exception e) when (e is ArgumentException or NetworkInformationException && attempt < 5)
            {
                // An interface went away (or came) between two reads of /proc and /sys: list them again.
            }
        }
    }

    /// <summary>The programs the launcher needs, missing ones named; empty when all are there.</summary>
    public static List<string> MissingPrograms() =>
        [.. new[] { "slirp4netns", "nsenter", "ip", "mkfifo", "sed", "iptables-restore" }.Where(p => FindProgram(p) is null)];

    private static string? FindProgram(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/bin", "/usr/sbin", "/sbin", "/bin"]).Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
}
