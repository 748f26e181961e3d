using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// Resource limits (ulimit -d, -v): the takeover must check what it will hold at its peak
/// before its first destructive step, and start the program normally when that does not fit,
/// never fail half-way ("resident: fatal ... mmap failed, errno 12" and exit 127 where a normal
/// start printed "git version ..."). Each limit is run normally and resident, with the same
/// outcome required: output, exit status, and no fatal line. (Not tested: a limit so tight that
/// ld.so itself fails before main — loading any LD_AUDIT module, resident's or one that does
/// nothing, moves the point where it fails, and so the message.)
/// </summary>
public sealed class LimitsTests
{
    [Theory]
    [InlineData("/usr/bin/git", "--version", "-d", 400)]   // too little for a normal start as well
    [InlineData("/usr/bin/git", "--version", "-d", 500)]   // the reported case
    [InlineData("/usr/bin/git", "--version", "-d", 600)]
    [InlineData("/usr/bin/git", "--version", "-d", 2000)]
    [InlineData("/usr/bin/cat", "/dev/null", "-v", 2600)]
    [InlineData("/usr/bin/cat", "/dev/null", "-v", 2500)]  // starts, then runs out of memory
    [InlineData("/usr/bin/cat", "/dev/null", "-v", 2800)]
    [InlineData("/usr/bin/cat", "/dev/null", "-v", 4000)]
    public void UnderALimit_AsANormalStart(string program, string arg, string option, int kib)
    {
        using var s = new ResidentSession();
        s.Register(program);
        var spec = s.Spec("/bin/bash", "-c", $"ulimit {option} {kib}; exec {program} {arg}");
        for (int i = 0; i < 3; i++)
        {
            var resident = s.RunResident(spec);
            Assert.DoesNotContain("resident: fatal", resident.StderrText);
            ResidentSession.AssertSameOutput(s.RunNormal(spec), resident);
        }
    }
}
