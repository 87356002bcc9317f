using System.Diagnostics;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// Stand-ins, on this machine, for what lies beyond it (no real internet here): a network namespace joined to the
/// host by a veth pair and routed to, holding an "internet" server at <see cref="Internet"/>, a cloud metadata service
/// at <see cref="Metadata"/> and a company server on a private address (<see cref="Private"/>), each answering TCP on
/// <see cref="Port"/> with its name. Removed, routes and all, when disposed.
/// </summary>
public sealed class OutsideNetwork : IAsyncDisposable
{
    public const string Internet = "203.0.113.1";
    public const string Metadata = "169.254.169.254";
    public const string Private = "10.77.0.1";
    public const int Port = 7000;

    private const string HostSide = "203.0.113.254";
    private readonly string _name = "covibe-out-" + Guid.NewGuid().ToString("N")[..6];
    private readonly string _veth = "cvo" + Guid.NewGuid().ToString("N")[..8];
    private Process? _server;

    public static async Task<OutsideNetwork> StartAsync()
    {
        var outside = new OutsideNetwork();
        await outside.SetUpAsync();
        return outside;
    }

    private async Task SetUpAsync()
    {
        var peer = _veth + "p";
        await IpAsync("netns", "add", _name);
        await IpAsync("link", "add", _veth, "type", "veth", "peer", "name", peer);
        await IpAsync("link", "set", peer, "netns", _name);
        await IpAsync("addr", "add", HostSide + "/24", "dev", _veth);
        await IpAsync("link", "set", _veth, "up");
        await IpAsync("-n", _name, "addr", "add", Internet + "/24", "dev", peer);
        await IpAsync("-n", _name, "addr", "add", Metadata + "/32", "dev", "lo");
        await IpAsync("-n", _name, "addr", "add", Private + "/32", "dev", "lo");
        await IpAsync("-n", _name, "link", "set", "lo", "up");
        await IpAsync("-n", _name, "link", "set", peer, "up");
        await IpAsync("-n", _name, "route", "add", "default", "via", HostSide);
        // Replace, not add: a run that was killed leaves its routes behind (they point at a veth that is gone).
        await IpAsync("route", "replace", Metadata + "/32", "via", Internet);
        await IpAsync("route", "replace", Private + "/32", "via", Internet);
        var info = new ProcessStartInfo("ip", ["netns", "exec", _name, "node", "-e",
            "require('net').createServer(s => s.end('hello from ' + s.localAddress + '\\n')).listen(" + Port + ", '0.0.0.0', () => console.log('listening'))"])
        {
            RedirectStandardOutput = true,
        };
        _server = Process.Start(info)!;
        (await _server.StandardOutput.ReadLineAsync()).ShouldBe("listening");
    }

    private static async Task IpAsync(params string[] args)
    {
        using var ip = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true })!;
        var error = await ip.StandardError.ReadToEndAsync();
        await ip.WaitForExitAsync();
        ip.ExitCode.ShouldBe(0, $"ip {string.Join(' ', args)}: {error}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            _server.Kill();
            await _server.WaitForExitAsync();
            _server.Dispose();
        }
        foreach (var args in new[] { new[] { "route", "del", Metadata + "/32" }, ["route", "del", Private + "/32"], ["link", "del", _veth], ["netns", "del", _name] })
        {
            using var ip = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true })!;
            await ip.WaitForExitAsync();
        }
    }
}
