using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// The way users turn the hook on: `eval "$(resident shell-init bash)"`. Programs started from
/// that shell — by name, by path, through a #! script — must run resident.
/// </summary>
public sealed class ShellInitTests
{
    [Fact]
    public void Bash_EnablesTheHookForChildren()
    {
        using var s = new ResidentSession();
        s.Register("/usr/bin/perl");
        var script = Path.Combine(s.WorkDir, "hello.pl");
        File.WriteAllText(script, "#!/usr/bin/perl\nprint qq(script @ARGV\\n);\n");
        File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        var commands = $"perl -e 'print qq(by name\\n)'; /usr/bin/perl -e 'print qq(by path\\n); exit 2' || echo \"status $?\"; {script} a b";

        var normal = s.RunNormal(s.Spec("/bin/bash", "-c", commands));
        Assert.Equal("by name\nby path\nstatus 2\nscript a b\n", normal.StdoutText);

        var init = $"eval \"$('{Product.Cli}' shell-init bash)\" || exit 99; case $LD_AUDIT in /*libresident.so) ;; *) exit 98 ;; esac; test -f \"$LD_AUDIT\" || exit 97; ";
        var resident = s.RunNormal(s.Spec("/bin/bash", ["-c", init + commands], new Dictionary<string, string> { ["RESIDENT_DEBUG"] = "1" }));
        var debug = ResidentSession.AssertSameOutput(normal, resident);
        ResidentSession.AssertRestored(debug, "/usr/bin/perl", 3, resident);
    }

    [Fact]
    public void Bash_RegisteringFromAShellWithTheHook()
    {
        // the usual order for a user who put shell-init in their profile: LD_AUDIT is already set
        // when `resident add` runs (and so in the environment of the capture). --no-measure:
        // whether perl starts faster restored is for benchmarks, not for a test on a busy machine
        using var s = new ResidentSession();
        const string run = "/usr/bin/perl -MPOSIX -e 'print floor(7.5), qq(\\n)'";
        var normal = s.RunNormal(s.Spec("/bin/bash", "-c", run));
        var script = $"eval \"$('{Product.Cli}' shell-init bash)\" && '{Product.Cli}' add --no-measure /usr/bin/perl >/dev/null && {run}";
        var resident = s.RunNormal(s.Spec("/bin/bash", ["-c", script], new Dictionary<string, string> { ["RESIDENT_DEBUG"] = "1" }));
        ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(normal, resident), "/usr/bin/perl", 1, resident);
    }
}
