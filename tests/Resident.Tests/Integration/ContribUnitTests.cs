using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// contrib/systemd: the user units that refresh images at login and whenever /etc/ld.so.cache
/// changes, as systemd itself reads them (systemd-analyze verify --user).
/// </summary>
public sealed class ContribUnitTests
{
    [Fact]
    public void SystemdUserUnits_Verify()
    {
        Assert.True(File.Exists("/usr/bin/systemd-analyze"), "systemd-analyze is not installed (package systemd)");
        using var s = new ResidentSession();
        var units = Path.Combine(s.Root, "units");
        Directory.CreateDirectory(units);
        var runtime = Path.Combine(s.Root, "runtime");
        Directory.CreateDirectory(runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string[] names = ["resident-refresh.path", "resident-refresh.service"];
        foreach (var n in names)
            File.Copy(Path.Combine(Product.RepoRoot, "contrib", "systemd", n), Path.Combine(units, n));
        var r = s.RunNormal(s.Spec("/usr/bin/systemd-analyze", ["verify", "--user", .. names.Select(n => "./" + n)],
            new Dictionary<string, string> { ["XDG_RUNTIME_DIR"] = runtime }) with { WorkingDirectory = units });
        Assert.True(r.ExitCode == 0 && r.StderrText.Trim() == "", r.ToString());
        var path = File.ReadAllText(Path.Combine(units, "resident-refresh.path"));
        Assert.Contains("PathChanged=/etc/ld.so.cache", path);
        Assert.Contains("Unit=resident-refresh.service", path);
    }
}
