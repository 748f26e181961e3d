using System.Numerics;
using System.Runtime.Versioning;
using Xunit;
using Resident.Format;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Faults;

/// <summary>
/// The security rules of README "Security": privileged programs are never registered nor
/// restored, and nothing secret is frozen into an image — the canary and the pointer guard are
/// re-seeded per exec, which is safe only because no word of the snapshot depends on them
/// (checked here on real images). Registry ownership and modes: <see cref="RegistryTrustTests"/>.
/// </summary>
public sealed class SecurityTests(Fixtures fx) : IClassFixture<Fixtures>
{
    [Fact]
    public void FileCapabilities_NeverRegistered()
    {
        using var s = new ResidentSession();
        var copy = Path.Combine(s.WorkDir, "args_caps");
        File.Copy(fx.Path("args"), copy);
        var setcap = ProcessRunner.Run(new RunSpec("/usr/sbin/setcap", ["cap_net_raw+ep", copy]) { Env = s.BaseEnv() });
        Assert.True(setcap.ExitCode == 0, setcap.ToString());
        var add = s.Cli("add", copy);
        Assert.True(add.ExitCode != 0 && add.StderrText.Contains("capabilities"), "resident add registered a program with file capabilities:\n" + add);
        Assert.Empty(s.ImageFiles());
    }

    /// <summary>
    /// A setuid-root program with a valid image (made setuid after the capture: mode changes keep
    /// every stamp) run by an unprivileged user: AT_SECURE is set, so nothing is restored and the
    /// run equals a normal one. ld.so itself already drops an LD_AUDIT path with a '/' in secure
    /// mode; the hook's own AT_SECURE check stands behind that.
    /// </summary>
    [Fact]
    public void SetuidProgramRunByAnotherUser_NeverRestored()
    {
        using var s = new ResidentSession();
        var dir = TempDir.Create("resident-setuid-");
        try
        {
            File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101); // nobody must reach the program and the registry
            var registry = Path.Combine(dir, "registry");
            var env = new Dictionary<string, string> { ["RESIDENT_DIR"] = registry };
            fx.CopyTo(Path.Combine(dir, "fixtures"));
            var program = Path.Combine(dir, "fixtures", "auxv"); // no $ORIGIN libraries: secure mode ignores $ORIGIN
            var add = s.Cli(["add", program], env);
            Assert.True(add.ExitCode == 0, add.ToString());
            File.SetUnixFileMode(registry, (UnixFileMode)0b111_101_101);
            File.SetUnixFileMode(program, UnixFileMode.SetUser | (UnixFileMode)0b111_101_101);

            var spec = s.Spec("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", program], env) with { WorkingDirectory = dir };
            var normal = s.RunNormal(spec);
            Assert.True(normal.ExitCode == 0 && normal.StdoutText.Contains("AT_SECURE=1"), normal.ToString());
            var resident = s.RunResident(spec);
            var debug = ResidentSession.AssertSameOutput(normal, resident);
            Assert.True(debug.Lines.Count == 0, "a setuid program was touched by the hook:\n" + resident);
            // run by its owner (no AT_SECURE) the hook does judge the same program and image, so the
            // silence above is not vacuous: it falls back, as the chmod changed the file's ctime
            var owner = s.RunResident(s.Spec(program, [], env) with { WorkingDirectory = dir });
            var ownerDebug = ResidentSession.AssertSameOutput(s.RunNormal(s.Spec(program, [], env) with { WorkingDirectory = dir }), owner);
            Assert.True(ownerDebug.Lines.Count == 1 && ownerDebug.Lines[0] == $"resident: fallback {program}: executable changed: {program}", owner.ToString());
        }
        finally
        {
            TempDir.Delete(dir);
        }
    }

    public static TheoryData<string> Programs => ["probe", "/usr/bin/perl", "/usr/bin/python3.11", "/usr/bin/clang-format", "/usr/bin/git"];

    /// <summary>
    /// At the capture point (_dl_start_user) the canary (TCB+0x28) and the pointer guard
    /// (TCB+0x30) already exist. Re-seeding them per exec is safe only if no saved word was
    /// derived from them: no copy of the canary outside the TCB, and no pointer mangled with the
    /// guard (PTR_MANGLE: rol(p ^ guard, 0x11)) that would demangle to an address of the image.
    /// Only saved pages can hold either (file pages are the files' bytes, zero pages are zero).
    /// </summary>
    [Theory]
    [MemberData(nameof(Programs))]
    public void NoWordDependsOnCanaryOrPointerGuard(string program)
    {
        using var s = new ResidentSession();
        var path = program.StartsWith('/') ? program : fx.Path(program);
        s.Register(path);
        var image = ImageReader.Read(Assert.Single(s.ImageFiles()));
        var bytes = File.ReadAllBytes(image.ImagePath);
        ulong tcb = image.Header.FsBase;
        ulong canary = Word(image, bytes, tcb + 0x28), guard = Word(image, bytes, tcb + 0x30);
        Assert.True(canary != 0 && guard != 0, "canary or pointer guard not set at the capture point");
        int copies = 0, mangled = 0;
        foreach (var r in image.Regions.Where(r => r.Kind == ImageFormat.RegionImage))
            for (ulong a = r.Start; a < r.End; a += 8)
            {
                ulong w = BitConverter.ToUInt64(bytes, (int)(r.Offset + (a - r.Start)));
                copies += w == canary && a != tcb + 0x28 ? 1 : 0;
                mangled += w != 0 && InImage(image, BitOperations.RotateRight(w, 0x11) ^ guard) ? 1 : 0;
            }
        Assert.True(copies == 0, $"{program}: {copies} copies of the canary outside the TCB would keep the capture's value");
        Assert.True(mangled == 0, $"{program}: {mangled} words look mangled with the capture's pointer guard");
    }

    static bool InImage(ImageInfo image, ulong address) => image.Regions.Any(r => address >= r.Start && address < r.End);

    /// <summary>The saved word at ADDRESS (it must lie in a region saved in the image).</summary>
    static ulong Word(ImageInfo image, byte[] bytes, ulong address)
    {
        var r = image.Regions.Single(r => address >= r.Start && address < r.End);
        Assert.True(r.Kind == ImageFormat.RegionImage, $"the TCB at {address:x} is not saved in the image");
        return BitConverter.ToUInt64(bytes, (int)(r.Offset + (address - r.Start)));
    }
}
