using Covibe.Protocol;
using Covibe.Server.Features.Machines;

namespace Covibe.Server.Features.Agents;

/// <summary>Why a request about an agent was refused; each REST and hub path turns it into its own status or error code.</summary>
public enum AgentFailure
{
    None,
    TooMany,
    NotFound,
    Forbidden,
    Invalid,
    Unavailable,
    NotRunning,
    NowhereToRun,
    /// <summary>The team's egress policy cannot be enforced where the agent would run: nothing started.</summary>
    EgressNotEnforced,
    /// <summary>The node following the agent did not answer (it is being taken over).</summary>
    Unreachable,
    /// <summary>Where the agent runs does not answer (its container engine stopped): the command was not carried out.</summary>
    PlaceUnreachable,
    /// <summary>The team's repository did not answer when the agent's branch was to start from it: nothing started.</summary>
    RepositoryUnreachable,
    /// <summary>A permission prompt was answered already (by someone else, a rule or the deadline), or withdrawn.</summary>
    AlreadyAnswered,
    /// <summary>The member asked too often (for control of an agent).</summary>
    RateLimited,
    /// <summary>A budget the new agent would count against is spent (the detail says which, and until when).</summary>
    BudgetSpent,
}

/// <summary>An agent, or why the request about one was refused (in words for the user).</summary>
public sealed record AgentResult(AgentDto? Agent, AgentFailure Failure = AgentFailure.None, string? Detail = null, Dictionary<string, string[]>? Errors = null, Place? Placement = null)
{
    public static AgentResult Fail(AgentFailure failure, string detail) => new(null, failure, detail);
}
