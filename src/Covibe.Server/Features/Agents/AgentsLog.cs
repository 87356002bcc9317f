namespace Covibe.Server.Features.Agents;

// Ids and states only: never tasks, input or output, which may hold anything.
internal static partial class AgentsLog
{
    [LoggerMessage(3001, LogLevel.Information, "Agent {AgentId} ({Type}) spawned by user {UserId} on {Backend}, pid {Pid}")]
    public static partial void Spawned(ILogger logger, string agentId, string type, string userId, string backend, int pid);

    [LoggerMessage(3002, LogLevel.Information, "Agent {AgentId} finished: {Status} (exit code {ExitCode})")]
    public static partial void Finished(ILogger logger, string agentId, string status, int? exitCode);

    [LoggerMessage(3003, LogLevel.Information, "Following agent {AgentId}, which no node followed (left by this node's previous run, or by a node that stopped renewing its lease)")]
    public static partial void Recovering(ILogger logger, string agentId);

    [LoggerMessage(3004, LogLevel.Error, "Following agent {AgentId} failed")]
    public static partial void FollowFailed(ILogger logger, string agentId, Exception exception);

    [LoggerMessage(3005, LogLevel.Warning, "Agent {AgentId} ignored SIGTERM; sending SIGKILL")]
    public static partial void KillEscalated(ILogger logger, string agentId);

    [LoggerMessage(3006, LogLevel.Error, "Agent {AgentId} could not be started")]
    public static partial void LaunchFailed(ILogger logger, string agentId, Exception exception);

    [LoggerMessage(3007, LogLevel.Information, "Agent {AgentId}: {Command} by user {UserId}")]
    public static partial void Controlled(ILogger logger, string agentId, string command, string userId);

    [LoggerMessage(3008, LogLevel.Warning, "Renewing this node's agent leases or looking for agents nobody follows failed; trying again shortly")]
    public static partial void TendFailed(ILogger logger, Exception exception);

    [LoggerMessage(3009, LogLevel.Warning, "Agent {AgentId}: its box is released but the kill could not reach it ({Reason}); its container goes with the box once the engine answers")]
    public static partial void KillDeferred(ILogger logger, string agentId, string reason);

    [LoggerMessage(3010, LogLevel.Information, "Agent {AgentId}: its input could not be closed after its turn ({Reason})")]
    public static partial void InputNotClosed(ILogger logger, string agentId, string reason);

    [LoggerMessage(3011, LogLevel.Information, "Agent {AgentId} asks to use {Tool} (request {RequestId}); waiting for the team's answer")]
    public static partial void PromptAsked(ILogger logger, string agentId, string tool, string requestId);

    [LoggerMessage(3012, LogLevel.Information, "Agent {AgentId}: {Tool} {Status} by {Reason}")]
    public static partial void PromptDecided(ILogger logger, string agentId, string tool, string status, string reason);

    [LoggerMessage(3013, LogLevel.Information, "Agent {AgentId}: {Tool} {Status} by user {UserId}")]
    public static partial void PromptAnswered(ILogger logger, string agentId, string tool, string status, string userId);

    [LoggerMessage(3014, LogLevel.Information, "Agent {AgentId}: nobody answered its {Tool} request within {Seconds} s; denied")]
    public static partial void PromptTimedOut(ILogger logger, string agentId, string tool, int seconds);

    [LoggerMessage(3015, LogLevel.Warning, "Agent {AgentId}: a permission prompt could not be handled")]
    public static partial void PromptFailed(ILogger logger, string agentId, Exception exception);

    [LoggerMessage(3016, LogLevel.Warning, "Agent {AgentId}: the answer to request {RequestId} is recorded but did not reach the agent now ({Reason}); it is written again when its output is read again")]
    public static partial void AnswerNotDelivered(ILogger logger, string agentId, string requestId, string reason);

    [LoggerMessage(3017, LogLevel.Warning, "Agent {AgentId}: who controls it could not be read; its watchers keep what they had")]
    public static partial void ControllersNotRead(ILogger logger, string agentId, Exception exception);

    [LoggerMessage(3018, LogLevel.Information, "Agent {AgentId}: {Action} by user {UserId}")]
    public static partial void Handover(ILogger logger, string agentId, string action, string userId);

    [LoggerMessage(3019, LogLevel.Information, "Team {TeamId}: {Subject} budget per {Period} set to {LimitUsd} USD by user {UserId} (null: removed)")]
    public static partial void BudgetSet(ILogger logger, string teamId, string subject, string period, double? limitUsd, string userId);

    [LoggerMessage(3020, LogLevel.Warning, "Team {TeamId}: the {Scope} {Period} budget of {LimitUsd} USD is reached ({SpentUsd} USD spent); {Running} agents running")]
    public static partial void BudgetReached(ILogger logger, string teamId, string scope, string period, double limitUsd, double spentUsd, int running);

    [LoggerMessage(3021, LogLevel.Warning, "Agent {AgentId}: its team's budgets could not be checked after it spent")]
    public static partial void BudgetNotChecked(ILogger logger, string agentId, Exception exception);

    [LoggerMessage(9004, LogLevel.Error, "A command sent by node {Node} failed here")]
    public static partial void CallFailed(ILogger logger, string node, Exception exception);
}
