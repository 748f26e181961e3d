using Xunit;
using Resident.Cli;
using Resident.Tests.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// resident [-l] [-f] [-x id] [-d] [-R] program ... against a real registry: what a DragonFly
/// user types must register, list and remove, with ids that are never handed out twice.
/// </summary>
public sealed class DragonflyFlagTests : IDisposable
{
    readonly ResidentSession s = new();

    public void Dispose() => s.Dispose();

    CliResult Resident(params string[] args) =>
        CliRun.Of((o, e) => DragonflyCommand.Run(DragonflyCommand.Parse(args, s.RegistryDir), o, e));

    [Fact]
    public void RegisterListRemove_IdsNeverReused()
    {
        var add = Resident("/usr/bin/true", "/usr/bin/env");
        Assert.True(add.Code == 0, add.ToString());
        Assert.Contains("registered /usr/bin/true (id 1)", add.Out);
        Assert.Contains("registered /usr/bin/env (id 2)", add.Out);

        var list = Resident("-l");
        Assert.Matches(@"(?m)^\s*1\s+/usr/bin/true\s", list.Out);
        Assert.Matches(@"(?m)^\s*2\s+/usr/bin/env\s", list.Out);

        Assert.Equal("removed /usr/bin/true (id 1)\n", Resident("-x", "1").Out);
        Assert.Contains("(id 3)", Resident("/usr/bin/true").Out);   // not 1 again, and not 2 (DragonFly's bug)
        Assert.Equal("removed /usr/bin/env (id 2)\n", Resident("-d", "/usr/bin/env").Out);
        Assert.Contains("(id 4)", Resident("env").Out);              // by name, on PATH
        var all = Resident("-R", "-l");
        Assert.True(all.Code == 0, all.ToString());
        Assert.Contains("removed /usr/bin/true (id 3)", all.Out);
        Assert.Contains("no programs registered", all.Out);
        Assert.Empty(s.ImageFiles());
        Assert.Contains("(id 5)", Resident("/usr/bin/true").Out);   // an emptied registry keeps counting
    }

    [Fact]
    public void EachFailureIsOneLine_StatusNonZero_OthersStillDone()
    {
        var r = Resident("/usr/bin/true", Path.Combine(s.Root, "missing"), "/etc/passwd");
        Assert.Equal(1, r.Code);
        Assert.Equal(2, r.ErrLines.Length);
        Assert.All(r.ErrLines, l => Assert.StartsWith("resident: cannot register ", l));
        Assert.Contains("registered /usr/bin/true", r.Out);

        var x = Resident("-x", "77", "-d", "/usr/bin/env");
        Assert.Equal(1, x.Code);
        Assert.Equal(["resident: no registration with id 77", "resident: /usr/bin/env is not registered"], x.ErrLines);
        Assert.Single(s.ImageFiles());
    }

    [Fact]
    public void ForceRegistersTheProgramAWrapperExecs()
    {
        // The wrapper runs /usr/bin/true in a child first: only the wrapper's own exec chain counts.
        string wrapper = Path.Combine(s.Root, "wrapper.sh");
        File.WriteAllText(wrapper, "#!/bin/sh\n/usr/bin/true\nexec /usr/bin/env \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var refused = Resident(wrapper);
        Assert.Equal(1, refused.Code);
        Assert.Contains("a script (#!)", refused.Err);

        var r = Resident("-f", wrapper);
        Assert.True(r.Code == 0, r.ToString());
        Assert.StartsWith($"registered /usr/bin/env (exec'd by {wrapper}) (id ", r.Out);
        Assert.Single(s.ImageFiles());

        var spec = s.Spec(wrapper, "/usr/bin/printf", "%s\\n", "through the wrapper");
        var normal = s.RunNormal(spec);
        Assert.Equal("through the wrapper\n", normal.StdoutText);
        var resident = s.RunResident(spec);
        ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(normal, resident), "/usr/bin/env", 1, resident);
    }

    [Fact]
    public void ForceFailsWhenTheWrapperExecsNothingDynamic()
    {
        string wrapper = Path.Combine(s.Root, "noexec.sh");
        File.WriteAllText(wrapper, "#!/bin/sh\n/usr/bin/true\n");   // runs a program, but in a child
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var r = Resident("-f", wrapper);
        Assert.Equal(1, r.Code);
        Assert.Equal([$"resident: cannot register {wrapper}: the wrapper ended (exit status 0) without executing a dynamically linked program "
            + "(programs it runs in child processes are not followed: it must exec the program)"], r.ErrLines);
        Assert.Empty(s.ImageFiles());
    }
}
