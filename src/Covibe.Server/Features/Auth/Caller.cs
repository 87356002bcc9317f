using System.Security.Claims;

namespace Covibe.Server.Features.Auth;

/// <summary>The authenticated member making a request, read from their access token.</summary>
public sealed record Caller(string UserId, string TeamId, string SessionId, string Name)
{
    public static Caller From(ClaimsPrincipal principal) => new(
        principal.FindFirstValue(CovibeClaims.UserId)!,
        principal.FindFirstValue(CovibeClaims.TeamId)!,
        principal.FindFirstValue(CovibeClaims.SessionId)!,
        principal.FindFirstValue(CovibeClaims.Name) ?? "");

    /// <summary>Whether the caller owns their team.</summary>
    public async Task<bool> IsTeamOwnerAsync(Data.CovibeDb db, CancellationToken cancellationToken) =>
        await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AnyAsync(db.Teams, t => t.Id == TeamId && t.OwnerId == UserId, cancellationToken);

    /// <summary>Lets minimal-API handlers take a <see cref="Caller"/> parameter.</summary>
    public static ValueTask<Caller?> BindAsync(HttpContext context) =>
        ValueTask.FromResult(context.User.Identity?.IsAuthenticated == true ? From(context.User) : null);
}
