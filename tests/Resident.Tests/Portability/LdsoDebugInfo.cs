using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Portability;

/// <summary>
/// What glibc's own debug information (libc6-dbg, read by gdb) says about an ld.so: the oracle
/// that the facts capture reads from the stripped file (LdsoFacts) are checked against.
/// </summary>
public static class LdsoDebugInfo
{
    /// <summary>
    /// sizeof(struct cpu_features) and the offset of CPUID leaf 1's EBX in it, for the ld.so at
    /// <paramref name="ldso"/> whose detached debug files are under <paramref name="debugDir"/>.
    /// Fails the test when gdb or the debug files are missing: never a silent pass.
    /// </summary>
    public static (int Size, int Leaf1Ebx) CpuFeatures(string ldso, string debugDir = "/usr/lib/debug")
    {
        var r = ProcessRunner.Run(new RunSpec("/usr/bin/gdb", [
            "-batch", "-nx", "-iex", $"set debug-file-directory {debugDir}",
            "-ex", "print sizeof(struct cpu_features)",
            // glibc 2.33 and later keep leaf 1 in features[0].cpuid, earlier ones in cpuid[0]
            "-ex", "print (long)&((struct cpu_features *)0)->features[0].cpuid.ebx",
            "-ex", "print (long)&((struct cpu_features *)0)->cpuid[0].ebx",
            ldso]) { Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin" } });
        var values = r.StdoutText.Split('\n').Where(l => l.StartsWith('$')).Select(l => int.Parse(l[(l.IndexOf('=') + 1)..])).ToList();
        Assert.True(values.Count == 2, $"gdb has no struct cpu_features for {ldso} (is libc6-dbg installed under {debugDir}?)\n{r}");
        return (values[0], values[1]);
    }
}
