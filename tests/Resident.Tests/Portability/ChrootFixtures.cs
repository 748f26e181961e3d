using System.Collections.Concurrent;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Portability;

/// <summary>
/// The fixture programs of tests/fixtures compiled inside a chroot, by its own gcc and g++
/// against its own glibc and libstdc++ (make OUT=dir), once per chroot and test process.
/// </summary>
public sealed class ChrootFixtures
{
    static readonly ConcurrentDictionary<string, Lazy<ChrootFixtures>> Built = new();

    readonly Chroot chroot;

    /// <summary>The build directory on the host.</summary>
    public string Dir { get; }

    ChrootFixtures(Chroot chroot, string dir) => (this.chroot, Dir) = (chroot, dir);

    public static ChrootFixtures Get(Chroot c) => Built.GetOrAdd(c.Suite, _ => new Lazy<ChrootFixtures>(() => Build(c))).Value;

    /// <summary>A fixture as programs inside the chroot name it, e.g. Path("probe").</summary>
    public string Path(string name) => chroot.Inside(System.IO.Path.Combine(Dir, name));

    /// <summary>A private copy of every fixture in DEST, a host path inside the chroot.</summary>
    public void CopyTo(string dest)
    {
        Directory.CreateDirectory(dest);
        foreach (var f in Directory.GetFiles(Dir))
            File.Copy(f, System.IO.Path.Combine(dest, System.IO.Path.GetFileName(f)));
    }

    static ChrootFixtures Build(Chroot c)
    {
        var src = c.CreateTemp("resident-fixture-src-");
        foreach (var f in Directory.GetFiles(Product.FixtureSources))
            File.Copy(f, System.IO.Path.Combine(src, System.IO.Path.GetFileName(f)));
        var dir = c.CreateTemp("resident-fixtures-");
        var r = c.Run(new RunSpec("/usr/bin/make", ["-s", "-C", c.Inside(src), "OUT=" + c.Inside(dir), "-j2"])
        {
            Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["LANG"] = "C" },
            Timeout = TimeSpan.FromMinutes(5),
        });
        Assert.True(r.ExitCode == 0, $"building the fixtures in the {c.Suite} chroot failed:\n{r}");
        return new ChrootFixtures(c, dir);
    }
}
