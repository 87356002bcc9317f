using System.CommandLine;
using System.Net.Http.Json;
using Covibe.Protocol;
using Spectre.Console;

namespace Covibe.Cli;

/// <summary><c>covibe team create|invite|show|remove</c>.</summary>
internal static class TeamCommands
{
    public static Command Create(CredentialStore store)
    {
        var team = new Command("team", "Create a team, invite teammates, see members");
        team.Subcommands.Add(CreateTeam(store));
        team.Subcommands.Add(Invite(store));
        team.Subcommands.Add(Show(store));
        team.Subcommands.Add(Remove(store));
        return team;
    }

    private static Command CreateTeam(CredentialStore store)
    {
        var server = CliCommon.ServerOption();
        var name = new Option<string>("--name") { Description = "Team name", Required = true };
        var userName = new Option<string>("--user-name") { Description = "Your display name", Required = true };
        var email = new Option<string>("--email") { Description = "Your email", Required = true };
        var passwordStdin = CliCommon.PasswordStdinOption();
        var signupTokenFile = new Option<FileInfo?>("--signup-token-file")
        {
            Description = "A file holding the operator's signup token, on a server that asks for one (or set COVIBE_SIGNUP_TOKEN)",
        };
        var command = new Command("create", "Create a team; you become its owner and are logged in") { server, name, userName, email, passwordStdin, signupTokenFile };
        command.SetHandler(async (parse, ct) =>
        {
            var password = CliCommon.ReadPassword(parse.GetValue(passwordStdin), "Choose a password (8+ characters):");
            // Never a command-line argument: those show in ps and shell history.
            var signupToken = parse.GetValue(signupTokenFile) is { } file
                ? file.Exists
                    ? File.ReadAllText(file.FullName).Trim()
                    : throw new CliException($"There is no signup token file at {file.FullName}. A server that asks for one writes it as signup-token in its data directory; one started with --dev asks for none.")
                : Environment.GetEnvironmentVariable("COVIBE_SIGNUP_TOKEN");
            using var client = new CovibeClient(CliCommon.ResolveServer(parse.GetValue(server), store), store, credentials: null);
            var created = await client.PostAsync("api/team/create",
                new CreateTeamRequest(parse.GetValue(name), parse.GetValue(userName), parse.GetValue(email), password, signupToken),
                CovibeJsonContext.Default.CreateTeamRequest, CovibeJsonContext.Default.CreateTeamResponse, ct);
            client.Remember(created.Auth);
            Console.WriteLine($"Created team {created.Auth.Team.Name}; logged in as {created.Auth.User.Name}.");
            PrintInvite(client.Server, created.Invite);
        });
        return command;
    }

    private static Command Invite(CredentialStore store)
    {
        var hours = new Option<int?>("--expires-hours") { Description = "Hours the code stays valid (default 168, at most 720)" };
        var maxUses = new Option<int?>("--max-uses") { Description = "How many people may join with it (default: no limit)" };
        var command = new Command("invite", "Make an invite code for a teammate") { hours, maxUses };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var invite = await client.PostAsync("api/team/invite", new CreateInviteRequest(parse.GetValue(hours), parse.GetValue(maxUses)),
                CovibeJsonContext.Default.CreateInviteRequest, CovibeJsonContext.Default.InviteResponse, ct);
            PrintInvite(client.Server, invite);
        });
        return command;
    }

    private static Command Show(CredentialStore store)
    {
        var command = new Command("show", "Show the team's members and who is online");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var team = await client.GetAsync("api/team", CovibeJsonContext.Default.TeamResponse, ct);
            var table = new Table().Title($"Team {Markup.Escape(team.Team.Name)}").AddColumns(
                new TableColumn("Name"), new TableColumn("Email"), new TableColumn("Status").NoWrap(), new TableColumn("Joined"), new TableColumn("Id").NoWrap());
            foreach (var m in team.Members)
            {
                table.AddRow(Markup.Escape(m.Name + (m.IsOwner ? " (owner)" : "")), Markup.Escape(m.Email), m.Status, CliCommon.Local(m.JoinedAt), m.Id);
            }
            AnsiConsole.Write(table);
        });
        return command;
    }

    private static Command Remove(CredentialStore store)
    {
        var userId = new Argument<string>("user-id") { Description = "The member's id (see `covibe team show`)" };
        var command = new Command("remove", "Remove a member (team owner only); their logins end at once") { userId };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            await client.SendAsync(HttpMethod.Delete, $"api/team/members/{Uri.EscapeDataString(parse.GetValue(userId)!)}", null, ct);
            Console.WriteLine("Removed.");
        });
        return command;
    }

    private static void PrintInvite(string server, InviteResponse invite)
    {
        Console.WriteLine($"Invite code: {invite.InviteCode}  (valid until {CliCommon.Local(invite.ExpiresAt)}{(invite.MaxUses is { } n ? $", {n} use(s)" : "")})");
        Console.WriteLine($"A teammate joins with: covibe login --server {server} --invite {invite.InviteCode} --email THEIR_EMAIL --name \"THEIR NAME\"");
    }

}
