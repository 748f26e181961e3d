using System.CommandLine;
using Xunit;
using Resident.Cli;

namespace Resident.Tests.Cli;

/// <summary>Which command lines are DragonFly's resident(8) form, and how they map onto the verbs.</summary>
public sealed class DragonflyParseTests
{
    static readonly RootCommand Root = new()
    {
        new Command("add"), new Command("list"), new Command("remove"), new Command("doctor"),
    };

    [Theory]
    [InlineData(true, "/usr/bin/perl")]
    [InlineData(true, "perl")]
    [InlineData(true, "-l")]
    [InlineData(true, "-lR")]
    [InlineData(true, "-x3")]
    [InlineData(true, "-f", "wrapper.sh")]
    [InlineData(false, "list")]
    [InlineData(false, "add", "perl")]
    [InlineData(false, "--help")]
    [InlineData(false, "-h")]
    [InlineData(false, "--version")]
    [InlineData(false, "[suggest:4]", "re")]
    [InlineData(false)]
    public void RecognisesTheDragonflyForm(bool expected, params string[] args) =>
        Assert.Equal(expected, DragonflyCommand.Applies(args, Root));

    [Fact]
    public void FlagsMapInOrder_ProgramsLast()
    {
        var s = DragonflyCommand.Parse(["-x", "3", "-x4", "-lR", "-d", "a", "b"], "/reg");
        Assert.Null(s.Error);
        Assert.Equal([new DragonflyAction('x', 3), new DragonflyAction('x', 4), new DragonflyAction('l'), new DragonflyAction('R')], s.Actions);
        Assert.True(s.Delete);
        Assert.False(s.Force);
        Assert.Equal(["a", "b"], s.Programs);
        Assert.Equal("/reg", s.RegistryDir);
    }

    [Fact]
    public void OptionsEndAtTheFirstProgramOrDoubleDash()
    {
        Assert.Equal(["prog", "-l"], DragonflyCommand.Parse(["-f", "prog", "-l"], "/r").Programs);
        var s = DragonflyCommand.Parse(["--", "-odd-name"], "/r");
        Assert.Equal(["-odd-name"], s.Programs);
        Assert.Empty(s.Actions);
    }

    [Theory]
    [InlineData("-x needs an id", "-x")]
    [InlineData("-x abc: not an id", "-x", "abc")]
    [InlineData("unknown option -z", "-z", "prog")]
    [InlineData("-d and -f do not go together", "-d", "-f", "prog")]
    [InlineData("no program given", "-d")]
    public void UsageErrorsDoNothingAndExit2(string error, params string[] args)
    {
        var s = DragonflyCommand.Parse(args, "/nonexistent-registry");
        Assert.Equal(error, s.Error);
        var r = CliRun.Of((o, e) => DragonflyCommand.Run(s, o, e));
        Assert.Equal(2, r.Code);
        Assert.Equal("", r.Out);
        Assert.StartsWith($"resident: {error}\nusage: resident [-l] [-f] [-x id] [-d] [-R] program", r.Err);
    }
}
