using System.CommandLine;
using System.Text.Json;
using Covibe.Protocol;
using Spectre.Console;

namespace Covibe.Cli;

/// <summary><c>covibe vm add|ls|update|rm</c>: your VMs, reached by the server over SSH.</summary>
internal static class VmCommands
{
    public static Command Create(CredentialStore store)
    {
        var vm = new Command("vm", "Register your VMs; agents run there over SSH, or through a runner the VM runs (covibe runner)");
        vm.Subcommands.Add(Add(store));
        vm.Subcommands.Add(Token(store));
        vm.Subcommands.Add(Revoke(store));
        vm.Subcommands.Add(Rotate(store));
        vm.Subcommands.Add(Audit(store));
        vm.Subcommands.Add(List(store));
        vm.Subcommands.Add(Update(store));
        vm.Subcommands.Add(Remove(store));
        vm.Subcommands.Add(Check(store));
        vm.Subcommands.Add(Assign(store));
        return vm;
    }

    private static Command Add(CredentialStore store)
    {
        var name = new Argument<string>("name") { Description = "A name for the VM, e.g. sarah-dev" };
        var host = new Option<string?>("--host") { Description = "Host name or IP address (SSH VMs)" };
        var port = new Option<int?>("--port") { Description = "SSH port (default 22)" };
        var user = new Option<string?>("--user") { Description = "User to log in as (SSH VMs)" };
        var keyFile = new Option<string?>("--key-file") { Description = "Private key file (read here, sent to the server, stored encrypted)" };
        var passwordStdin = CliCommon.PasswordStdinOption();
        var hostKey = new Option<string?>("--host-key") { Description = "The VM's host key fingerprint (as offered, or SHA256:...) you have checked; asked for if left out" };
        var runner = new Option<bool>("--runner") { Description = "The VM runs `covibe runner`, which dials out to the server: no host, no key (connection type polling)" };
        var connection = new Option<string?>("--connection-type") { Description = "ssh_proxy (default), polling or tunnel (both: a runner)" };
        connection.AcceptOnlyFromAmong("ssh_proxy", "polling", "tunnel");
        var command = new Command("add", "Register a VM (seed 001: POST /api/vm/register)") { name, host, port, user, keyFile, passwordStdin, hostKey, runner, connection };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var type = parse.GetValue(connection) ?? (parse.GetValue(runner) ? "polling" : "ssh_proxy");
            if (type != "ssh_proxy")
            {
                var added = await client.PostAsync("api/vm/register", new RegisterVmRequest(parse.GetValue(name), null, null, null, ConnectionType: type),
                    CovibeJsonContext.Default.RegisterVmRequest, CovibeJsonContext.Default.VmDto, ct);
                PrintRegistration(added.Name, added.Id, added.RegistrationToken!, added.RegistrationExpiresAt!.Value, added.RunnerCommand!);
                return;
            }
            if (parse.GetValue(host) is null || parse.GetValue(user) is null)
            {
                throw new CliException("An SSH VM needs --host and --user (or add it with --runner: the VM runs `covibe runner` and dials out, no key needed).");
            }
            var (privateKey, password) = ReadCredential(parse.GetValue(keyFile), parse.GetValue(passwordStdin), required: true);
            var request = new RegisterVmRequest(parse.GetValue(name), parse.GetValue(host), parse.GetValue(port), parse.GetValue(user), privateKey, password, parse.GetValue(hostKey));
            var vm = await WithHostKeyConfirmationAsync(
                fingerprint => client.PostAsync("api/vm/register", request with { HostKeyFingerprint = fingerprint },
                    CovibeJsonContext.Default.RegisterVmRequest, CovibeJsonContext.Default.VmDto, ct),
                request.HostKeyFingerprint);
            Console.WriteLine($"Registered {vm.Name} ({vm.Id}), host key {vm.HostKeyFingerprint} pinned.");
        });
        return command;
    }

    private static Command List(CredentialStore store)
    {
        var command = new Command("ls", "List the team's VMs (where they are is shown for your own only)");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vms = await client.GetAsync("api/vm/list", CovibeJsonContext.Default.VmDtoArray, ct);
            var table = new Table().AddColumns(new TableColumn("Id").NoWrap(), new TableColumn("Name"), new TableColumn("Owner"),
                new TableColumn("Where"), new TableColumn("Status").NoWrap(), new TableColumn("Agents").NoWrap(), new TableColumn("Last seen"));
            foreach (var v in vms)
            {
                var where = !v.IsOwner ? "" : v.ConnectionType == "ssh_proxy" ? $"{v.Username}@{v.Host}:{v.Port}"
                    : v.Username is null ? $"runner ({v.ConnectionType}), not registered yet" : $"runner: {v.Username}@{v.RunnerHostname}";
                table.AddRow(v.Id[..12], Markup.Escape(v.Name), Markup.Escape(v.OwnerName + (v.IsOwner ? " (you)" : "")),
                    Markup.Escape(where), v.Status, v.AgentsRunning.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    (v.LastPoll ?? v.LastSeen) is { } seen ? CliCommon.Local(seen) : "");
            }
            AnsiConsole.Write(table);
        });
        return command;
    }

    private static Command Update(CredentialStore store)
    {
        var id = new Argument<string>("vm") { Description = "VM id, or a unique start of it" };
        var name = new Option<string?>("--name") { Description = "New name" };
        var host = new Option<string?>("--host") { Description = "New host (the host key is confirmed again)" };
        var port = new Option<int?>("--port") { Description = "New SSH port" };
        var user = new Option<string?>("--user") { Description = "New user" };
        var keyFile = new Option<string?>("--key-file") { Description = "New private key file" };
        var passwordStdin = CliCommon.PasswordStdinOption();
        var hostKey = new Option<string?>("--host-key") { Description = "Host key fingerprint to confirm (with a new host or port)" };
        var command = new Command("update", "Change one of your VMs (seed 001: PUT /api/vm/update)") { id, name, host, port, user, keyFile, passwordStdin, hostKey };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            var (privateKey, password) = ReadCredential(parse.GetValue(keyFile), parse.GetValue(passwordStdin), required: false);
            var request = new UpdateVmRequest(vmId, parse.GetValue(name), parse.GetValue(host), parse.GetValue(port), parse.GetValue(user), privateKey, password, parse.GetValue(hostKey));
            var vm = await WithHostKeyConfirmationAsync(
                fingerprint => client.SendJsonAsync(HttpMethod.Put, "api/vm/update", request with { HostKeyFingerprint = fingerprint },
                    CovibeJsonContext.Default.UpdateVmRequest, CovibeJsonContext.Default.VmDto, ct),
                request.HostKeyFingerprint);
            Console.WriteLine($"Updated {vm.Name}.");
        });
        return command;
    }

    private static Command Remove(CredentialStore store)
    {
        var id = new Argument<string>("vm") { Description = "VM id, or a unique start of it" };
        var command = new Command("rm", "Remove one of your VMs and its stored credential") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            await client.SendAsync(HttpMethod.Delete, $"api/vm/{vmId}", null, ct);
            Console.WriteLine("Removed.");
        });
        return command;
    }

    private static Command Check(CredentialStore store)
    {
        var id = new Argument<string>("vm") { Description = "VM id or name" };
        var command = new Command("check", "Log in to one of your VMs over SSH now and show its status") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            var vm = await client.PostAsync($"api/vm/{vmId}/check", CovibeJsonContext.Default.VmDto, ct);
            Console.WriteLine(vm.Status == "online" ? $"{vm.Name} is online." : $"{vm.Name} is {vm.Status}: {vm.LastError}");
            Environment.ExitCode = vm.Status == "online" ? 0 : 1;
        });
        return command;
    }

    private static void PrintRegistration(string name, string id, string token, DateTime expiresAt, string runnerCommand)
    {
        Console.WriteLine($"Added runner VM {name} ({id}). On the VM, as the user agents should run as, run (once; the token works once, until {CliCommon.Local(expiresAt)}):");
        Console.WriteLine();
        Console.WriteLine($"  {runnerCommand}");
        Console.WriteLine();
        Console.WriteLine("It then keeps running and reconnects by itself; docs/runner.md has a systemd unit. The token is not shown again (`covibe vm token` makes a new one).");
    }

    private static Command Token(CredentialStore store)
    {
        var id = new Argument<string>("vm") { Description = "VM id or name" };
        var command = new Command("token", "Make a new one-time registration token for one of your runner VMs (to register its runner again)") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            var registration = await client.PostAsync($"api/vm/{vmId}/registration-token", CovibeJsonContext.Default.RunnerRegistrationDto, ct);
            PrintRegistration(parse.GetValue(id)!, vmId, registration.RegistrationToken, registration.ExpiresAt, registration.Command);
        });
        return command;
    }

    private static Command Revoke(CredentialStore store)
    {
        var id = new Argument<string>("vm") { Description = "VM id or name" };
        var command = new Command("revoke", "Revoke your runner VM's credential now: its runner is disconnected and cannot come back without a new token") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            var vm = await client.PostAsync($"api/vm/{vmId}/revoke", CovibeJsonContext.Default.VmDto, ct);
            Console.WriteLine($"Revoked the runner of {vm.Name}. Its agents keep running on the VM but are no longer followed once its lease runs out.");
        });
        return command;
    }

    private static Command Rotate(CredentialStore store)
    {
        var id = new Argument<string>("vm") { Description = "VM id or name" };
        var command = new Command("rotate", "Have your runner VM replace its credential now (no downtime; the old one stops working once the new one is in use)") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            await client.SendAsync(HttpMethod.Post, $"api/vm/{vmId}/rotate", null, ct);
            Console.WriteLine("Asked the runner to rotate its credential; `covibe vm audit` shows when it has.");
        });
        return command;
    }

    private static Command Audit(CredentialStore store)
    {
        var id = new Argument<string>("vm") { Description = "VM id or name" };
        var command = new Command("audit", "Show who did what on one of your VMs: sessions, agents, credentials (newest first)") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var vmId = await ResolveAsync(client, parse.GetValue(id)!, ct);
            var entries = await client.GetAsync($"api/vm/{vmId}/audit", CovibeJsonContext.Default.VmAuditDtoArray, ct);
            var table = new Table().AddColumns(new TableColumn("When").NoWrap(), new TableColumn("Who").NoWrap(), new TableColumn("What").NoWrap(), new TableColumn("Detail"));
            foreach (var e in entries)
            {
                table.AddRow(CliCommon.Local(e.At), Markup.Escape(e.ActorName ?? e.Actor), Markup.Escape(e.Action), Markup.Escape(e.Detail ?? ""));
            }
            AnsiConsole.Write(table);
        });
        return command;
    }

    private static Command Assign(CredentialStore store)
    {
        var release = new Option<bool>("--release") { Description = "Give your pool VM back" };
        var command = new Command("assign", "Get a VM from the server's shared pool (seed 000's assignVMToUser)") { release };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            if (parse.GetValue(release))
            {
                await client.SendAsync(HttpMethod.Delete, "api/vm/assign", null, ct);
                Console.WriteLine("Released.");
                return;
            }
            var assignment = await client.PostAsync("api/vm/assign", CovibeJsonContext.Default.VmAssignmentDto, ct);
            var vm = assignment.Instance;
            Console.WriteLine($"Your VM: {vm.Id} ({vm.Host}{(vm.Region is null ? "" : $", {vm.Region}")}), {vm.CurrentUsers} of {vm.MaxUsers} places taken.");
        });
        return command;
    }

    /// <summary>
    /// Sends the request; if the server asks to confirm the host key, shows the fingerprints and,
    /// at a terminal, asks whether to trust the one the VM presents.
    /// </summary>
    private static async Task<VmDto> WithHostKeyConfirmationAsync(Func<string?, Task<VmDto>> send, string? fingerprint)
    {
        try
        {
            return await send(fingerprint);
        }
        catch (CovibeApiException e) when (e.ProblemType == "confirm-host-key" && e.Problem is { } problem)
        {
            var offered = problem.GetProperty("fingerprints").EnumerateArray().Select(f => f.GetString()!).ToList();
            var listing = string.Join("\n", offered.Select(f => $"  {f}"));
            if (Console.IsInputRedirected || offered.Count != 1)
            {
                throw new CliException($"Check the VM's host key before trusting it. It presents:\n{listing}\n" +
                    "Compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the VM, then run again with --host-key and the matching line (as shown, or SHA256:... alone).");
            }
            var only = offered[0];
            if (!AnsiConsole.Confirm($"The VM presents host key {Markup.Escape(offered[0])}. Is that the VM's own (check with ssh-keygen -lf on it)?", defaultValue: false))
            {
                throw new CliException("Not registered: host key not confirmed.");
            }
            return await send(only);
        }
    }

    private static (string? PrivateKey, string? Password) ReadCredential(string? keyFile, bool passwordStdin, bool required)
    {
        if (keyFile is not null && passwordStdin)
        {
            throw new CliException("Give --key-file or --password-stdin, not both.");
        }
        if (keyFile is not null)
        {
            try
            {
                return (File.ReadAllText(keyFile), null);
            }
            catch (IOException e)
            {
                throw new CliException($"Cannot read the key file: {e.Message}");
            }
        }
        if (passwordStdin)
        {
            return (null, CliCommon.ReadPassword(fromStdin: true, ""));
        }
        return required ? throw new CliException("Give the VM's private key with --key-file PATH (recommended) or a password with --password-stdin.") : (null, null);
    }

    internal static async Task<string> ResolveAsync(CovibeClient client, string given, CancellationToken cancellationToken)
    {
        var vms = await client.GetAsync("api/vm/list", CovibeJsonContext.Default.VmDtoArray, cancellationToken);
        var matches = vms.Where(v => v.Id.StartsWith(given, StringComparison.OrdinalIgnoreCase) || v.Name == given).ToList();
        return matches.Count switch
        {
            1 => matches[0].Id,
            0 => throw new CliException($"No VM of your team is called or starts with '{given}'. See `covibe vm ls`."),
            _ => throw new CliException($"'{given}' matches {matches.Count} VMs; give more of the id."),
        };
    }
}
