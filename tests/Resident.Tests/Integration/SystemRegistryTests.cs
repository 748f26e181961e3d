using Xunit;
using Resident.Cli;
using Resident.HookContract;
using Resident.Tests.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// resident --system: root writes a registry every user's hook reads after the user's own.
/// RESIDENT_SYSTEM_DIR points it at a temporary directory (tests never touch /var/cache).
/// </summary>
public sealed class SystemRegistryTests : IDisposable
{
    readonly ResidentSession s = new();
    string SystemDir => Path.Combine(s.Root, "system");

    public void Dispose() => s.Dispose();

    [Fact]
    public void ResolveSystem_EnvironmentOrVarCache()
    {
        Assert.Equal("/srv/res", RegistryPaths.ResolveSystem(n => n == "RESIDENT_SYSTEM_DIR" ? "/srv/res" : null));
        Assert.Equal("/var/cache/resident", RegistryPaths.ResolveSystem(n => n == "RESIDENT_SYSTEM_DIR" ? "relative" : null));
        Assert.Equal("/var/cache/resident", RegistryPaths.ResolveSystem(_ => null));
    }

    [Fact]
    public void AddSystem_DirectoryAndImagesReadableByAll_UsedByTheHook()
    {
        Assert.True(Environment.IsPrivilegedProcess, "the system registry is written by root; these tests run as root");
        var add = CliRun.Of((o, e) => AddCommand.Run(new AddSettings(["/usr/bin/env"], SystemDir, System: true), o, e));
        Assert.True(add.Code == 0, add.ToString());
        Assert.Equal((UnixFileMode)0x1ed, File.GetUnixFileMode(SystemDir));   // 0755
        string image = Assert.Single(Directory.GetFiles(SystemDir, "*.img"));
        Assert.Equal((UnixFileMode)0x1a4, File.GetUnixFileMode(image));        // 0644
        Assert.Empty(s.ImageFiles());

        var spec = s.Spec("/usr/bin/env", ["/usr/bin/printf", "%s\\n", "from the system registry"],
            new Dictionary<string, string> { ["RESIDENT_SYSTEM_DIR"] = SystemDir });
        var normal = s.RunNormal(spec);
        var resident = s.RunResident(spec);
        ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(normal, resident), "/usr/bin/env", 1, resident);

        var list = CliRun.Of((o, e) => ListCommand.Run(new ListSettings(SystemDir), o, e));
        Assert.Contains("/usr/bin/env", list.Out);
        var remove = CliRun.Of((o, e) => RemoveCommand.Run(new RemoveSettings(["/usr/bin/env"], [], false, SystemDir, System: true), o, e));
        Assert.True(remove.Code == 0, remove.ToString());
        Assert.Empty(Directory.GetFiles(SystemDir, "*.img"));
    }

    [Fact]
    public void GroupWritableSystemRegistryIsRefused()
    {
        Directory.CreateDirectory(SystemDir);
        File.SetUnixFileMode(SystemDir, (UnixFileMode)0x1fd);   // 0775
        var add = CliRun.Of((o, e) => AddCommand.Run(new AddSettings(["/usr/bin/env"], SystemDir, System: true), o, e));
        Assert.Equal(1, add.Code);
        Assert.Equal($"resident: registry {SystemDir} is group- or world-writable (chmod go-w it): the hook would not trust its images\n", add.Err);
    }
}
