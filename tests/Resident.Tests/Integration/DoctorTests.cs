using Xunit;
using Resident.Cli;
using Resident.Format;
using Resident.Tests.Capture;
using Resident.Tests.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// resident doctor: the machine checks, and for a program whether it would register (a real
/// trial capture) or, registered, what the hook says about this environment (RESIDENT_PROBE=1).
/// </summary>
public sealed class DoctorTests : IDisposable
{
    readonly ResidentSession s = new();
    readonly NativeBuild build = new();
    string SystemDir => Path.Combine(s.Root, "system-registry");

    public void Dispose()
    {
        build.Dispose();
        s.Dispose();
    }

    CliResult Doctor(string? program, IDictionary<string, string>? extra = null)
    {
        var env = s.BaseEnv();
        foreach (var (k, v) in extra ?? new Dictionary<string, string>())
            env[k] = v;
        return CliRun.Of((o, e) => DoctorCommand.Run(new DoctorSettings(program, s.RegistryDir, SystemDir, Product.Hook, env), o, e));
    }

    static Dictionary<string, string> HookEnabled => new() { ["LD_AUDIT"] = Product.Hook };

    [Fact]
    public void MachineChecks_OneMarkedLineEach()
    {
        Product.RequireHook();
        var r = Doctor(null, HookEnabled);
        Assert.True(r.Code == 0, r.ToString());
        string[] subjects = ["ptrace allowed", "PR_GET_AUXV", "vdso mremap", "rseq", "ld.so entry pattern", "your registry",
            "system registry", "hook enabled in this shell", "hook file"];
        Assert.Equal(subjects.Select(x => "✓ " + x + ":"), r.OutLines.Select(l => l[..(l.IndexOf(':') + 1)]));
        Assert.Contains("a test child was seized", r.Out);
    }

    [Fact]
    public void HookNotEnabled_UntrustedRegistry_AreCrosses()
    {
        Directory.CreateDirectory(s.RegistryDir);
        File.SetUnixFileMode(s.RegistryDir, (UnixFileMode)0x1ff);   // 0777
        var r = Doctor(null, new Dictionary<string, string> { ["LD_AUDIT"] = "/other/audit.so" });
        Assert.Equal(1, r.Code);
        Assert.Contains($"✗ your registry: registry {s.RegistryDir} is group- or world-writable", r.Out);
        Assert.Contains($"✗ hook enabled in this shell: LD_AUDIT does not name {Product.Hook}", r.Out);
    }

    [Fact]
    public void StaticBinary_WouldNotRegister()
    {
        string prog = build.Compile("static", "int main(void){return 0;}\n", "-static");
        var r = Doctor(prog, HookEnabled);
        Assert.Equal(1, r.Code);
        Assert.Equal([$"· registered: no: {prog} has no image in {s.RegistryDir} or {SystemDir}",
            "✗ would register: no: statically linked (no PT_INTERP): there is no dynamic loading to skip"], r.OutLines);
    }

    [Fact]
    public void SetuidCopy_WouldNotRegister()
    {
        string prog = build.Copy("/usr/bin/true", "setuid-true");
        File.SetUnixFileMode(prog, File.GetUnixFileMode(prog) | UnixFileMode.SetUser);
        var r = Doctor(prog, HookEnabled);
        Assert.Equal(1, r.Code);
        Assert.Equal("✗ would register: no: setuid programs are never registered", r.OutLines[^1]);
    }

    [Fact]
    public void UnregisteredProgram_TrialCaptureSucceeds_AndLeavesNothing()
    {
        var r = Doctor("/usr/bin/env", HookEnabled);
        Assert.True(r.Code == 0, r.ToString());
        Assert.StartsWith("✓ would register: a capture succeeds (image ", r.OutLines[^1]);
        Assert.Empty(s.ImageFiles());
    }

    [Fact]
    public void RegisteredProgram_TheHookSaysRestoreOrFallBack()
    {
        Product.RequireHook();
        Assert.Equal(0, CliRun.Of((o, e) => AddCommand.Run(new AddSettings(["/usr/bin/env"], s.RegistryDir), o, e)).Code);

        var ok = Doctor("/usr/bin/env", HookEnabled);
        Assert.True(ok.Code == 0, ok.ToString());
        Assert.Equal([$"✓ registered: /usr/bin/env: id 1 in {s.RegistryDir} (fresh)", $"✓ hook enabled in this shell: LD_AUDIT={Product.Hook}",
            "✓ restore: the hook says, in this environment: would restore"], ok.OutLines);

        var env = new Dictionary<string, string>(HookEnabled) { ["LD_BIND_NOT"] = "1" };
        var fallback = Doctor("/usr/bin/env", env);
        Assert.Equal(1, fallback.Code);
        Assert.Equal("✗ restore: the hook says, in this environment: would fall back: env differs: LD_BIND_NOT", fallback.OutLines[^1]);
    }

    [Fact]
    public void ImageOfAnOlderFormat_IsRegisteredAndStale_AndTheHookFallsBack()
    {
        Product.RequireHook();
        Assert.Equal(0, CliRun.Of((o, e) => AddCommand.Run(new AddSettings(["/usr/bin/env"], s.RegistryDir), o, e)).Code);
        ResidentSession.MakeOlderFormat(Assert.Single(s.ImageFiles()));
        var r = Doctor("/usr/bin/env", HookEnabled);
        Assert.Equal(1, r.Code);
        uint v = Resident.Format.ImageFormat.Version;
        Assert.Equal([$"✓ registered: /usr/bin/env: id 1 in {s.RegistryDir} (stale: image format version {v - 1}, this resident writes {v})",
            $"✓ hook enabled in this shell: LD_AUDIT={Product.Hook}",
            "✗ restore: the hook says, in this environment: would fall back: image version differs"], r.OutLines);
    }

    [Fact]
    public void RegisteredThenMadeSetuid_IsNotStarted()
    {
        string prog = build.Copy("/usr/bin/true", "later-setuid");
        Assert.Equal(0, CliRun.Of((o, e) => AddCommand.Run(new AddSettings([prog], s.RegistryDir), o, e)).Code);
        File.SetUnixFileMode(prog, File.GetUnixFileMode(prog) | UnixFileMode.SetUser);
        var r = Doctor(prog, HookEnabled);
        Assert.Equal(1, r.Code);
        Assert.Equal("✗ restore: the hook would never take it over: setuid programs are never registered", r.OutLines[^1]);
    }
}
