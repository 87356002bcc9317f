using Covibe.Web;

namespace Covibe.Server.Tests;

/// <summary>Text from outside, echoed in errors and logs: no control characters (forged log lines, terminal escapes), bounded.</summary>
public sealed class PrintableTextTests
{
    [Fact]
    public void ControlCharacters_BecomeQuestionMarks_AndTheRestStays()
    {
        PrintableText.Of("evil\nINFO forged line\u001b[31m").ShouldBe("evil?INFO forged line?[31m");
        PrintableText.Of("héllo 🎉").ShouldBe("héllo 🎉");
    }

    [Fact]
    public void LongText_IsCutAtTheLimit()
    {
        PrintableText.Of(new string('a', 500)).Length.ShouldBe(100);
        PrintableText.Of(new string('a', 500), 200).Length.ShouldBe(200);
    }

    [Fact]
    public void AnOptionalFieldLeftOut_StaysNull() => PrintableText.OfOptional(null).ShouldBeNull();
}
