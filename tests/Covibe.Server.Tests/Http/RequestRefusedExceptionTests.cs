using Covibe.Server.Http;

namespace Covibe.Server.Tests;

/// <summary>A service's refusal, said without HTTP, and the status it becomes.</summary>
public sealed class RequestRefusedExceptionTests
{
    [Theory]
    [InlineData(Refusal.Unauthenticated, 401)]
    [InlineData(Refusal.Forbidden, 403)]
    [InlineData(Refusal.NotFound, 404)]
    [InlineData(Refusal.Conflict, 409)]
    [InlineData(Refusal.TooLarge, 413)]
    [InlineData(Refusal.Unprocessable, 422)]
    [InlineData(Refusal.TooMany, 429)]
    [InlineData(Refusal.Unreachable, 502)]
    [InlineData(Refusal.Unavailable, 503)]
    public void EachKind_HasItsStatus(Refusal kind, int status) =>
        new RequestRefusedException(kind, "some-type", "Some title", "What to do.").Status.ShouldBe(status);

    [Fact]
    public void AFieldOfAnItem_IsNamedUnderTheItem_AndOtherRefusalsStayAsTheyAre()
    {
        var field = RequestRefusedException.Field("maxInstances", "'maxInstances' is from 1 to 10.");
        field.Status.ShouldBe(400);
        var under = field.Under("[2].");
        under.Errors!.Keys.ShouldBe(["[2].maxInstances"]);
        under.Errors["[2].maxInstances"].ShouldBe(["'maxInstances' is from 1 to 10."]);
        var forbidden = RequestRefusedException.Forbidden("Only the owner.");
        forbidden.Under("[2].").ShouldBeSameAs(forbidden);
    }
}
