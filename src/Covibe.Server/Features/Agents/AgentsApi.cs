using System.Globalization;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Machines;
using Covibe.Server.Hosting;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Agents;

/// <summary>Seed 001's <c>/api/agent/*</c> routes, seed 003's <c>POST /api/agents/spawn</c>, and output reading.</summary>
public static class AgentsApi
{
    public const int MaxOutputPage = 1024 * 1024;

    public static IServiceCollection AddAgents(this IServiceCollection services)
    {
        services.AddOptions<AgentsOptions>().BindConfiguration(AgentsOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.Permissions.Problem() is null, "Covibe:Agents:Permissions: a rule is not one (write Tool or Tool(specifier), e.g. Bash(npm test)), or Mode is bypass without AllowBypass.")
            .ValidateOnStart();
        services.AddSingleton<AgentLauncher>();
        services.AddSingleton<AgentFeeds>();
        services.AddSingleton<AgentMetrics>();
        services.AddSingleton<AgentCosts>();
        services.AddSingleton<AgentBudgets>();
        services.AddSingleton<Hosting.IMetricsSource>(sp => sp.GetRequiredService<AgentMetrics>());
        services.AddSingleton<Covibe.Execution.FileChanges>();
        services.AddSingleton<AgentEvents>();
        services.AddSingleton<AgentOutputPump>();
        services.AddSingleton<Vms.IVmAgents, VmAgents>();
        services.AddSingleton<AgentService>();
        services.AddSingleton<Boxes.IBoxOccupants>(sp => sp.GetRequiredService<AgentService>());
        services.AddSingleton<AgentLeases>();
        services.AddSingleton<IAgentOutputRelay, NoAgentOutputRelay>();
        services.AddSingleton<IAgentOutputStore, NoAgentOutputStore>();
        services.AddSingleton<AgentOutputReader>();
        services.AddSingleton<AgentOutputPages>();
        services.AddSingleton<IAgentControlRoute, NoAgentControlRoute>();
        services.AddSingleton<AgentSupervisor>();
        services.AddHostedService(sp => sp.GetRequiredService<AgentSupervisor>());
        services.AddSingleton<AgentControl>();
        services.AddSingleton<AgentPrompts>();
        services.AddSingleton<AgentActions>();
        services.AddSingleton<AgentHandover>();
        services.AddSingleton<AgentApprovals>();
        services.AddHostedService(sp => sp.GetRequiredService<AgentApprovals>());
        return services;
    }

    /// <summary>With <c>REDIS_URL</c>: agent output to every node, and an owner's commands to the node that follows the agent.</summary>
    public static IServiceCollection AddAgentsAcrossNodes(this IServiceCollection services)
    {
        services.AddSingleton<RedisAgentRelay>();
        services.AddSingleton<IAgentOutputRelay>(sp => sp.GetRequiredService<RedisAgentRelay>());
        services.AddSingleton<IAgentOutputStore>(sp => sp.GetRequiredService<RedisAgentRelay>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisAgentRelay>());
        services.AddSingleton<RedisAgentControl>();
        services.AddSingleton<IAgentControlRoute>(sp => sp.GetRequiredService<RedisAgentControl>());
        // Before the route listens: what other nodes send is carried out here (one node never gets any).
        services.AddHostedService<AgentControlServer>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisAgentControl>());
        return services;
    }

    public static IEndpointRouteBuilder MapAgentsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/agent").WithTags("Agents").RequireAuthorization();
        api.MapPost("/spawn", Spawn);
        api.MapGet("/list", List);
        api.MapGet("/types", Types);
        api.MapGet("/costs", Costs);
        api.MapGet("/{id}", Get);
        api.MapDelete("/{id}", Kill);
        api.MapGet("/{id}/output", Output);
        api.MapGet("/{id}/events", Events);
        api.MapPost("/{id}/input", Input);
        api.MapPost("/{id}/interrupt", Interrupt);
        api.MapPost("/{id}/end", End);
        api.MapAgentSteering();
        app.MapPost("/api/agents/spawn", SpawnSeed003).WithTags("Agents").RequireAuthorization();
        app.MapTeamAgentSettings();
        app.MapTeamBudgets();
        return app;
    }

    public static async Task<Results<Created<AgentDto>, ProblemHttpResult>> Spawn(
        SpawnAgentRequest request, Caller caller, AgentService agents, CancellationToken cancellationToken)
    {
        var result = await agents.SpawnAsync(caller, request, cancellationToken);
        return result.Agent is { } agent ? TypedResults.Created($"/api/agent/{agent.Id}", agent) : Refusal(result);
    }

    /// <summary>Seed 003's route and answer shape: <c>{success, method, ...}</c>.</summary>
    public static async Task<Results<Created<SpawnAgentResponse>, ProblemHttpResult>> SpawnSeed003(
        SpawnAgentRequest request, Caller caller, AgentService agents, CancellationToken cancellationToken)
    {
        var result = await agents.SpawnAsync(caller, request, cancellationToken);
        return result.Agent is { } agent
            ? TypedResults.Created($"/api/agent/{agent.Id}", new SpawnAgentResponse(true, result.Placement!.Method, agent, result.Placement.Fallback))
            : Refusal(result);
    }

    public static async Task<Ok<AgentListResponse>> List(Caller caller, AgentService agents, CancellationToken cancellationToken) =>
        TypedResults.Ok(new AgentListResponse(await agents.ListAsync(caller, cancellationToken)));

    /// <summary>What the team's agents spent over the last <paramref name="days"/> days (30 unless given), for every member of the team.</summary>
    public static async Task<Results<Ok<AgentCostsResponse>, ValidationProblem>> Costs(Caller caller, AgentCosts costs, CancellationToken cancellationToken, int? days = null) =>
        days is < 1 or > AgentCosts.MaxDays
            ? Problems.Validation(new() { ["days"] = [$"Ask for 1 to {AgentCosts.MaxDays} days."] })
            : TypedResults.Ok(await costs.ForTeamAsync(caller, days ?? 30, cancellationToken));

    /// <summary>The agent types this server offers (with USE_MOCK_AGENTS, every one runs the mock).</summary>
    public static Ok<AgentTypeDto[]> Types(AgentLauncher launcher) =>
        TypedResults.Ok(launcher.Types.OrderBy(t => t.Key).Select(t => new AgentTypeDto(t.Key, t.Value.Description, t.Value.IsConversational)).ToArray());

    public static async Task<Results<Ok<AgentDto>, ProblemHttpResult>> Get(
        string id, Caller caller, AgentService agents, CancellationToken cancellationToken) =>
        Answer(await agents.GetAsync(caller, id, cancellationToken));

    /// <summary>Seed 001's kill (owner only): SIGTERM now, SIGKILL after the grace period; the final status follows on the hub.</summary>
    public static async Task<Results<Accepted<AgentDto>, ProblemHttpResult>> Kill(
        string id, Caller caller, AgentService agents, CancellationToken cancellationToken)
    {
        return Accepted(id, await agents.KillAsync(caller, id, cancellationToken));
    }

    public static async Task<Results<Accepted<AgentDto>, ProblemHttpResult>> Input(
        string id, AgentInputRequest request, Caller caller, AgentService agents, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(request.Data))
        {
            return Problems.ValidationAsProblem(new() { ["data"] = ["'data' is required: the text to write to the agent's stdin."] });
        }
        return Accepted(id, await agents.InputAsync(caller, id, request.Data, cancellationToken));
    }

    public static async Task<Results<Accepted<AgentDto>, ProblemHttpResult>> Interrupt(
        string id, Caller caller, AgentService agents, CancellationToken cancellationToken)
    {
        return Accepted(id, await agents.InterruptAsync(caller, id, cancellationToken));
    }

    public static async Task<Results<Accepted<AgentDto>, ProblemHttpResult>> End(
        string id, Caller caller, AgentService agents, CancellationToken cancellationToken)
    {
        return Accepted(id, await agents.EndInputAsync(caller, id, cancellationToken));
    }

    /// <summary>
    /// Raw output bytes from <c>from</c> (default 0), at most <c>limit</c> (default and maximum 1 MiB); with <c>wait</c>, a long
    /// poll (<see cref="LogPages"/>). Headers: <c>Covibe-Position</c>, <c>Covibe-Next</c>, <c>Covibe-Complete</c>, and as
    /// before them <c>Covibe-Output-Start</c>, <c>Covibe-Output-Next</c>, <c>Covibe-Output-Complete</c>.
    /// </summary>
    public static async Task<IResult> Output(
        string id, Caller caller, AgentOutputPages pages, HttpContext http, long? from, int? limit, int? wait, TimeProvider time, CancellationToken cancellationToken)
    {
        LogPages.Check(from, wait);
        var page = await LogPages.WaitAsync(ct => pages.ReadAsync(caller, id, from, limit ?? MaxOutputPage, ct), p => p.Page.Data.Length > 0 || p.Page.Complete, wait, time, cancellationToken);
        http.Response.Headers["Covibe-Output-Start"] = page.Page.Position.ToString(CultureInfo.InvariantCulture);
        http.Response.Headers["Covibe-Output-Next"] = page.Page.Next.ToString(CultureInfo.InvariantCulture);
        http.Response.Headers["Covibe-Output-Complete"] = page.Page.Complete ? "true" : "false";
        return LogPages.Answer(http.Response, page.Page, "application/octet-stream");
    }

    /// <summary>Parsed stream-json events from the line starting at <c>from</c>; <c>limit</c> events at most (default 200).</summary>
    public static async Task<Results<Ok<AgentEventsResponse>, ProblemHttpResult>> Events(
        string id, Caller caller, AgentOutputPages pages, long? from, int? limit, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000)
        {
            return Problems.ValidationAsProblem(new() { ["limit"] = ["'limit' must be between 1 and 1000."] });
        }
        var (page, endOfOutput) = await pages.ReadAsync(caller, id, from, MaxOutputPage, cancellationToken);
        var events = new List<AgentEvent>();
        var data = page.Data.AsSpan();
        var consumed = 0;
        while (consumed < data.Length && events.Count < (limit ?? 200))
        {
            var newline = data[consumed..].IndexOf((byte)'\n');
            // A last line without its newline is only taken once the agent has finished.
            var length = newline >= 0 ? newline + 1 : endOfOutput ? data.Length - consumed : -1;
            if (length < 0)
            {
                break;
            }
            events.AddRange(StreamJson.Parse(data.Slice(consumed, length), page.Position + consumed));
            consumed += length;
        }
        var next = page.Position + consumed;
        return TypedResults.Ok(new AgentEventsResponse([.. events], next, page.Complete && consumed == data.Length));
    }

    /// <summary>A control request taken: 202 with the agent; the outcome follows as agent_status.</summary>
    private static Results<Accepted<AgentDto>, ProblemHttpResult> Accepted(string id, AgentResult result) =>
        result.Agent is { } agent ? TypedResults.Accepted($"/api/agent/{id}", agent) : Refusal(result);

    private static Results<Ok<AgentDto>, ProblemHttpResult> Answer(AgentResult result) =>
        result.Agent is { } agent ? TypedResults.Ok(agent) : Refusal(result);

    internal static ProblemHttpResult Refusal(AgentResult result) => result.Failure switch
    {
        AgentFailure.Invalid => Problems.ValidationAsProblem(result.Errors ?? []),
        AgentFailure.NotFound => Problems.NotFound("Agent", result.Detail!),
        AgentFailure.Forbidden => Problems.Forbidden(result.Detail!),
        AgentFailure.Unavailable => Problems.Create(422, "agent-unavailable", "Agent type not available", result.Detail!),
        AgentFailure.NotRunning => Problems.Conflict("agent-not-running", "The agent is not running", result.Detail!),
        AgentFailure.TooMany => Problems.Create(429, "too-many-agents", "Too many agents", result.Detail!),
        AgentFailure.NowhereToRun => Problems.Create(503, "container-engine-unavailable", "Nowhere to run the agent", result.Detail!),
        AgentFailure.EgressNotEnforced => Problems.Create(503, PlacementUnavailableException.EgressNotEnforced, "The team's egress policy cannot be enforced here", result.Detail!),
        AgentFailure.Unreachable => Problems.Create(503, "agent-node-unreachable", "The node following the agent did not answer", result.Detail!),
        AgentFailure.PlaceUnreachable => Problems.Create(503, "container-engine-unavailable", "Where the agent runs does not answer", result.Detail!),
        AgentFailure.RepositoryUnreachable => Problems.Create(502, "repository-unreachable", "The team's repository could not be reached", result.Detail!),
        AgentFailure.RateLimited => Problems.Create(429, "rate-limited", "Asked too often", result.Detail!),
        AgentFailure.BudgetSpent => Problems.Create(429, "budget-spent", "Budget spent", result.Detail!),
        AgentFailure.AlreadyAnswered => Problems.Conflict("already-answered", "The permission request was answered already", result.Detail!),
        _ => throw new InvalidOperationException($"No refusal for {result.Failure}."),
    };
}
