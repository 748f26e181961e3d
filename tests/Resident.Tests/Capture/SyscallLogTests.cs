using Xunit;
using Resident.Trace;

namespace Resident.Tests.Capture;

public sealed class SyscallLogTests
{
    static ulong[] A(params ulong[] a) => [.. a, .. new ulong[6 - a.Length]];

    static SyscallLog Log(params (long Nr, ulong[] Args, string? Path, long Result)[] calls)
    {
        var log = new SyscallLog();
        log.Exit(0);   // execve's own return comes first and has no entry
        foreach (var c in calls)
        {
            log.Entry(c.Nr, c.Args, c.Path);
            log.Exit(c.Result);
        }
        return log;
    }

    [Fact]
    public void ClassifiesProbesAndOpens()
    {
        var log = Log(
            (SyscallTable.Openat, A(unchecked((ulong)-100), 1), "/lib/x/libm.so.6", -2),
            (SyscallTable.Access, A(1), "/etc/ld.so.preload", -2),
            (SyscallTable.Newfstatat, A(unchecked((ulong)-100), 1), "/lib/x/libm.so.6", -2),
            (SyscallTable.Openat, A(unchecked((ulong)-100), 1), "/etc/ld.so.cache", 3),
            (SyscallTable.Openat, A(unchecked((ulong)-100), 1), "/lib/libc.so.6/x", -20),
            (SyscallTable.Openat, A(unchecked((ulong)-100), 1), "/root/secret", -13));
        Assert.Equal(["/lib/x/libm.so.6", "/etc/ld.so.preload", "/lib/libc.so.6/x"], log.ProbedAbsent);
        Assert.Equal(["/etc/ld.so.cache"], log.Opened);
        Assert.Equal(6, log.Records.Count);
        Assert.Null(log.FirstRefusal());
    }

    [Fact]
    public void DerivesKernelState()
    {
        var log = Log(
            (SyscallTable.ArchPrctl, A(0x1002, 0x7000), null, 0),
            (SyscallTable.SetTidAddress, A(0x72d0), null, 1234),
            (SyscallTable.SetRobustList, A(0x72e0, 24), null, 0),
            (SyscallTable.Rseq, A(0x7980, 0x20, 0, 0x53053053), null, 0));
        Assert.Equal(new KernelThreadState(0x7000, 0x72d0, 0x72e0, 24, 0x7980, 0x20, 0x53053053), log.KernelState(0x7000));
    }

    [Fact]
    public void FailedRseqRegistersNothing() =>
        Assert.Equal(0UL, Log((SyscallTable.Rseq, A(0x7980, 0x20, 0, 0x53053053), null, -38)).KernelState(1).RseqAddr);

    [Theory]
    [InlineData(SyscallTable.Write, new ulong[] { 2, 0, 10 }, "write")]
    [InlineData(SyscallTable.Prlimit64, new ulong[] { 0, 3, 0x1000, 0 }, "resource limit")]
    [InlineData(SyscallTable.ArchPrctl, new ulong[] { 0x1001, 0 }, "arch_prctl")]   // ARCH_SET_GS
    [InlineData(13L, new ulong[] { 2, 0, 0 }, "syscall 13")]                   // rt_sigaction
    public void RefusesWhatTheRestorerCannotReproduce(long nr, ulong[] args, string named)
    {
        var refusal = Log((SyscallTable.Mmap, A(0, 4096), null, 0x1000), (nr, A(args), null, 0)).FirstRefusal();
        Assert.NotNull(refusal);
        Assert.Contains(named, refusal);
    }

    [Fact]
    public void AllowsReadOnlyQueries() =>
        Assert.Null(Log(
            (SyscallTable.Prlimit64, A(0, 3, 0, 0x7ff0), null, 0),
            (SyscallTable.ArchPrctl, A(0x3001, 0x7ff0), null, -22),
            (SyscallTable.Brk, A(0), null, 0x5000)).FirstRefusal());

    [Fact]
    public void RefusesRelativeLookups()
    {
        var log = new SyscallLog();
        log.Entry(SyscallTable.Openat, A(unchecked((ulong)-100), 1), "/home/u/rel/libx.so", relativePath: "rel/libx.so");
        log.Exit(-2);
        Assert.Contains("relative path \"rel/libx.so\"", log.FirstRefusal());
    }

    [Fact]
    public void KeepsOutputForTheErrorMessage()
    {
        var log = new SyscallLog();
        log.AddOutput("prog: error while loading shared libraries: libx.so: cannot open shared object file\n");
        Assert.StartsWith("prog: error while loading", log.Output);
    }
}
