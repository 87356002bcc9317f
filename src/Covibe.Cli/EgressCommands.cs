using System.CommandLine;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe egress</c>: where the team's code may connect (its egress policy) and what was refused lately;
/// <c>covibe egress set MODE [--allow ENTRY]...</c>: the owner's choice.
/// </summary>
internal static class EgressCommands
{
    public static Command Create(CredentialStore store)
    {
        var command = new Command("egress", "Where your team's agents, terminals, previews and boxes on the server may connect, and what was refused lately");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            Print(await client.GetAsync("api/team/egress", CovibeJsonContext.Default.EgressPolicyResponse, ct));
        });

        var mode = new Argument<string>("mode") { Description = "open (anywhere), allowlist (only the listed hosts and networks), none (nowhere), or default (the server's)" };
        mode.AcceptOnlyFromAmong("open", "allowlist", "none", "default");
        var allow = new Option<string[]>("--allow")
        {
            Description = "A host name (*.example.org for any name under it), an IPv4 address or CIDR the team may reach; repeat it. Without it, the server's default list",
            AllowMultipleArgumentsPerToken = true,
        };
        var set = new Command("set", "Set your team's egress policy (team owner); it holds for every new agent, terminal and preview at once") { mode, allow };
        set.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var chosen = parse.GetValue(mode) is "default" ? null : parse.GetValue(mode);
            var entries = parse.GetValue(allow) is { Length: > 0 } list ? list : null;
            Print(await client.SendJsonAsync(HttpMethod.Put, "api/team/egress", new SetEgressPolicyRequest(chosen, entries),
                CovibeJsonContext.Default.SetEgressPolicyRequest, CovibeJsonContext.Default.EgressPolicyResponse, ct));
        });
        command.Subcommands.Add(set);
        return command;
    }

    private static void Print(EgressPolicyResponse policy)
    {
        var why = policy.Chosen is null ? $"the server's default; at most {policy.Ceiling} may be chosen" : $"chosen by the team; the server allows at most {policy.Ceiling}";
        Console.WriteLine(policy.Mode switch
        {
            "open" => $"Egress: open: your team's code may connect anywhere on the internet ({why}).",
            "none" => $"Egress: none: your team's code may connect nowhere ({why}).",
            _ => $"Egress: allowlist: your team's code may connect only to these, through the proxy its HTTPS_PROXY names ({why}):",
        });
        if (policy.Mode == "allowlist")
        {
            foreach (var entry in policy.Allow)
            {
                Console.WriteLine("  " + entry);
            }
        }
        if (policy.Blocked.Length > 0)
        {
            Console.WriteLine("Refused lately:");
            foreach (var block in policy.Blocked)
            {
                var times = block.Count > 1 ? $" ({block.Count} times)" : "";
                Console.WriteLine($"  {CliCommon.Local(block.At)}  {block.Message}{times}");
            }
        }
    }
}
