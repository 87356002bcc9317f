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
        var vm = new Command("vm", "Register your VMs; agents run there over SSH");
        vm.Subcommands.Add(Add(store));
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
        var host = new Option<string>("--host") { Description = "Host name or IP address", Required = true };
        var port = new Option<int?>("--port") { Description = "SSH port (default 22)" };
        var user = new Option<string>("--user") { Description = "User to log in as", Required = true };
        var keyFile = new Option<string?>("--key-file") { Description = "Private key file (read here, sent to the server, stored encrypted)" };
        var passwordStdin = CliCommon.PasswordStdinOption();
        var hostKey = new Option<string?>("--host-key") { Description = "The VM's host key fingerprint (SHA256:...) you have checked; asked for if left out" };
        var command = new Command("add", "Register a VM (seed 001: POST /api/vm/register)") { name, host, port, user, keyFile, passwordStdin, hostKey };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
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
                table.AddRow(v.Id[..12], Markup.Escape(v.Name), Markup.Escape(v.OwnerName + (v.IsOwner ? " (you)" : "")),
                    v.IsOwner ? Markup.Escape($"{v.Username}@{v.Host}:{v.Port}") : "", v.Status, v.AgentsRunning.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    v.LastSeen is { } seen ? CliCommon.Local(seen) : "");
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
                    "Compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the VM, then run again with --host-key SHA256:...");
            }
            var only = offered[0].Split(' ')[^1];
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
