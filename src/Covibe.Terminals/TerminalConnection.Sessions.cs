using Covibe.Web;
using System.Text;
using Covibe.Protocol;

namespace Covibe.Terminals;

/// <summary>Seed 004's <c>session</c>, <c>command</c> and <c>input</c> messages for sessions of this server.</summary>
internal sealed partial class TerminalConnection
{
    private async Task SessionAsync(TerminalRequest request, TerminalUser user, CancellationToken cancellationToken)
    {
        switch (request.Action)
        {
            case TerminalActions.Create:
            {
                if (request.Id is { } wanted && peers.Find(wanted) is not null)
                {
                    throw new TerminalException(TerminalErrorCodes.SessionExists, $"A session '{wanted}' exists already. Attach to it, or create one with another id.");
                }
                var session = await manager.CreateAsync(user, request.Id, request.Config, cancellationToken);
                Send(new TerminalSessionMessage(TerminalActions.Created, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage);
                await AttachAsync(session, since: 0, readOnly: false);
                break;
            }
            case TerminalActions.Attach:
            {
                var session = Visible(request.Id, user);
                await AttachAsync(session, request.Since, readOnly: !session.IsOwner(user));
                break;
            }
            case TerminalActions.Detach:
            {
                var session = Visible(request.Id, user);
                await DetachAsync(session.Id);
                Send(new TerminalSessionMessage(TerminalActions.Detached, session.Id), TerminalJsonContext.Wire.TerminalSessionMessage);
                break;
            }
            case TerminalActions.Resize:
            {
                var session = Owned(request.Id, user);
                var (cols, rows) = TerminalLaunch.Size(request.Config?.Cols ?? request.Cols, request.Config?.Rows ?? request.Rows);
                if (!session.Resize(cols, rows))
                {
                    throw Gone(session.Id);
                }
                Send(new TerminalSessionMessage(TerminalActions.Resized, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage);
                break;
            }
            case TerminalActions.Share:
            {
                var session = Owned(request.Id, user);
                session.SetShared(request.Shared ?? true);
                manager.Changed(session);
                Send(new TerminalSessionMessage(TerminalActions.Shared, session.Id, session.Info()), TerminalJsonContext.Wire.TerminalSessionMessage);
                break;
            }
            case TerminalActions.Close:
            {
                var session = Owned(request.Id, user);
                var exitCode = await session.CloseAsync(cancellationToken);
                Send(new TerminalSessionMessage(TerminalActions.Closed, session.Id, ExitCode: exitCode), TerminalJsonContext.Wire.TerminalSessionMessage);
                break;
            }
            case TerminalActions.List:
                SendList(user);
                break;
            default:
                throw new TerminalException(TerminalErrorCodes.UnknownAction,
                    $"Unknown session action '{PrintableText.Of(request.Action ?? "")}'. Use create, attach, detach, resize, share, close or list.");
        }
    }

    private void Command(TerminalRequest request, TerminalUser user)
    {
        var session = Owned(request.Session, user);
        if (request.Command is null)
        {
            throw new TerminalException(TerminalErrorCodes.InvalidMessage, "A command message needs \"command\": the line to run.");
        }
        CheckLength(request.Command);
        var line = TerminalLaunch.CommandLine(request.Command, request.Cwd, request.Env, session.CommandDirectory);
        if (!session.Write(Encoding.UTF8.GetBytes(line), request.Id ?? ""))
        {
            throw Gone(session.Id);
        }
    }

    private void Input(TerminalRequest request, TerminalUser user)
    {
        var session = Owned(request.Session, user);
        if (request.Data is null)
        {
            throw new TerminalException(TerminalErrorCodes.InvalidMessage, "An input message needs \"data\": the keystrokes to send.");
        }
        CheckLength(request.Data);
        if (!session.Write(Encoding.UTF8.GetBytes(request.Data), commandId: null))
        {
            throw Gone(session.Id);
        }
    }

    private void CheckLength(string text)
    {
        if (text.Length > options.MaxCommandLength)
        {
            throw new TerminalException(TerminalErrorCodes.CommandTooLong, $"Commands and input are limited to {options.MaxCommandLength} characters; this one has {text.Length}.");
        }
    }

    private TerminalSession Visible(string? id, TerminalUser user)
    {
        var session = manager.Find(id);
        if (session is null || !session.IsVisibleTo(user))
        {
            throw new TerminalException(TerminalErrorCodes.SessionNotFound,
                $"There is no session '{PrintableText.Of(id ?? "")}' you can see. List yours with {{\"type\":\"session\",\"action\":\"list\"}}.");
        }
        return session;
    }

    private TerminalSession Owned(string? id, TerminalUser user)
    {
        var session = Visible(id, user);
        if (!session.IsOwner(user))
        {
            throw new TerminalException(TerminalErrorCodes.Forbidden, $"Session '{session.Id}' belongs to {session.Owner.Name}; you may watch it, not type into it, resize or close it.");
        }
        return session;
    }

    private static TerminalException Gone(string id) =>
        new(TerminalErrorCodes.CommandFailed, $"The shell of session '{id}' has exited.");

    /// <summary>The sessions this user can see, on this server and on the others of the deployment.</summary>
    private void SendList(TerminalUser user) =>
        Send(new TerminalSessionsMessage([.. manager.Sessions.Where(s => s.IsVisibleTo(user)).Select(s => s.Info())
                .Concat(peers.Sessions.Where(p => p.IsVisibleTo(user)).Select(p => p.Info)).OrderBy(i => i.CreatedAt)]),
            TerminalJsonContext.Wire.TerminalSessionsMessage);
}
