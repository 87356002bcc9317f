using System.CommandLine;
using System.Net.Http.Json;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary><c>covibe login</c>, <c>logout</c>, <c>whoami</c>.</summary>
internal static class AccountCommands
{
    public static IEnumerable<Command> Create(CredentialStore store) => [Login(store), Logout(store), WhoAmI(store)];

    private static Command Login(CredentialStore store)
    {
        var server = CliCommon.ServerOption();
        var email = new Option<string>("--email") { Description = "Your email", Required = true };
        var invite = new Option<string?>("--invite") { Description = "Invite code from a teammate (to join a team the first time)" };
        var name = new Option<string?>("--name") { Description = "Your display name (when joining with --invite)" };
        var teamId = new Option<string?>("--team-id") { Description = "Team to log in to, if your email belongs to several" };
        var passwordStdin = CliCommon.PasswordStdinOption();
        var command = new Command("login", "Log in to a Covibe server, or join a team with an invite code") { server, email, invite, name, teamId, passwordStdin };
        command.SetHandler(async (parse, ct) =>
        {
            var inviteCode = parse.GetValue(invite);
            var password = CliCommon.ReadPassword(parse.GetValue(passwordStdin), inviteCode is null ? "Password:" : "Choose a password (8+ characters):");
            using var client = new CovibeClient(CliCommon.ResolveServer(parse.GetValue(server), store), store, credentials: null);
            var auth = await client.PostAsync("api/auth/login",
                new LoginRequest(parse.GetValue(email), password, inviteCode, parse.GetValue(name), parse.GetValue(teamId)),
                CovibeJsonContext.Default.LoginRequest, CovibeJsonContext.Default.AuthResponse, ct);
            client.Remember(auth);
            Console.WriteLine($"Logged in to {client.Server} as {auth.User.Name} <{auth.User.Email}>, team {auth.Team.Name}.");
        });
        return command;
    }

    private static Command Logout(CredentialStore store)
    {
        var all = new Option<bool>("--all") { Description = "Sign out every device logged in as you" };
        var command = new Command("logout", "Sign out and forget the saved login") { all };
        command.SetHandler(async (parse, ct) =>
        {
            if (store.Load() is not { } credentials)
            {
                Console.WriteLine("Not logged in.");
                return;
            }
            using (var client = new CovibeClient(credentials.Server, store, credentials))
            {
                await client.SendAsync(HttpMethod.Post, "api/auth/logout",
                    JsonContent.Create(new LogoutRequest(credentials.RefreshToken, parse.GetValue(all)), CovibeJsonContext.Default.LogoutRequest), ct);
            }
            store.Delete();
            Console.WriteLine("Logged out.");
        });
        return command;
    }

    private static Command WhoAmI(CredentialStore store)
    {
        var command = new Command("whoami", "Show who you are logged in as");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var me = await client.GetAsync("api/auth/me", CovibeJsonContext.Default.MeResponse, ct);
            Console.WriteLine($"{me.User.Name} <{me.User.Email}> in team {me.Team.Name}{(me.IsOwner ? " (owner)" : "")} on {client.Server}");
        });
        return command;
    }
}
