using Covibe.Execution.Egress;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Events;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Egress;

/// <summary><c>/api/team/egress</c>: the team's egress policy (every member reads it; the owner sets it) and its latest refusals.</summary>
public static class EgressApi
{
    public const int MaxEntries = 200;

    public static IEndpointRouteBuilder MapEgressApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/team/egress").WithTags("Team").RequireAuthorization();
        api.MapGet("", Get);
        api.MapPut("", Set);
        return app;
    }

    public static async Task<Ok<EgressPolicyResponse>> Get(Caller caller, EgressPolicies policies, EgressEvents events, IOptions<EgressOptions> options,
        CancellationToken cancellationToken) =>
        TypedResults.Ok(Response(await policies.ForTeamAsync(caller.TeamId, cancellationToken), options.Value, events.Recent(caller.TeamId)));

    public static async Task<Results<Ok<EgressPolicyResponse>, ValidationProblem, ProblemHttpResult>> Set(
        SetEgressPolicyRequest request, Caller caller, CovibeDb db, EgressPolicies policies, EgressEvents events, EgressEnforcement enforcement,
        ITeamEvents hub, IOptions<EgressOptions> options, ILogger<EgressPolicies> logger, CancellationToken cancellationToken)
    {
        if (!await caller.IsTeamOwnerAsync(db, cancellationToken))
        {
            return Problems.Forbidden("Only the team owner can set the team's egress policy.");
        }
        var v = new Validator();
        EgressMode? mode = null;
        if (request.Mode is not null)
        {
            if (request.Mode is not ("open" or "allowlist" or "none"))
            {
                v.Fail("mode", "Must be open, allowlist or none (or null for the server's default).");
            }
            else if (EgressOptions.Parse(request.Mode) > options.Value.CeilingMode)
            {
                v.Fail("mode", $"This server allows at most '{options.Value.Ceiling}' (Covibe:Egress:Ceiling); ask its operator for more.");
            }
            else
            {
                mode = EgressOptions.Parse(request.Mode);
            }
        }
        if (request.Allow is { Length: > MaxEntries })
        {
            v.Fail("allow", $"At most {MaxEntries} entries.");
        }
        foreach (var (entry, i) in (request.Allow ?? []).Select((e, i) => (e, i)))
        {
            if (EgressPolicy.Validate(entry ?? "") is { } problem)
            {
                v.Fail($"allow[{i}]", problem);
            }
        }
        if (!v.IsValid)
        {
            return Problems.Validation(v.Errors);
        }
        var policy = await policies.SetAsync(caller.TeamId, mode, request.Allow, cancellationToken);
        EgressLog.PolicySet(logger, caller.TeamId, EgressOptions.Name(policy.Policy.Mode), caller.UserId);
        // The team's containers that run here follow at once; new processes everywhere read it when they start.
        await enforcement.ApplyToRunningAsync(caller.TeamId, policy.Policy, cancellationToken);
        var response = Response(policy, options.Value, events.Recent(caller.TeamId));
        hub.Publish(caller.TeamId, new EgressPolicyMessage(response, caller.Name));
        return TypedResults.Ok(response);
    }

    private static EgressPolicyResponse Response(TeamEgressPolicy policy, EgressOptions options, EgressBlockDto[] blocked) =>
        new(EgressOptions.Name(policy.Policy.Mode), policy.Chosen is { } chosen ? EgressOptions.Name(chosen) : null, options.Default, options.Ceiling,
            [.. policy.Allow], blocked);
}
