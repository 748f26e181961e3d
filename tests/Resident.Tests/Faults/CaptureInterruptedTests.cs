using System.Diagnostics;
using System.Runtime.Versioning;
using Xunit;
using Resident.Format;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Faults;

/// <summary>
/// A capture that does not finish — `resident add` killed at several points, or the registry's
/// file system full — leaves no partial image where the hook looks, and an image registered
/// before stays intact and in use.
/// </summary>
public sealed class CaptureInterruptedTests(Fixtures fx) : IClassFixture<Fixtures>
{
    /// <summary>The registry holds exactly one image (name *.img), it is valid, and SPEC is restored from it.</summary>
    static void AssertOneValidImage(ResidentSession s, RunSpec spec, string program)
    {
        var images = Directory.GetFiles(s.RegistryDir, "*.img");
        Assert.True(images.Length == 1, "expected one image, found: " + string.Join(", ", Directory.GetFiles(s.RegistryDir)));
        ImageReader.Read(images[0]);
        s.AssertSameResident(spec, program);
    }

    /// <summary>Starts `resident add PROGRAM` and SIGKILLs it once WHEN says so (or it exits).</summary>
    static void AddKilled(ResidentSession s, string program, Func<Stopwatch, bool> when)
    {
        var psi = new ProcessStartInfo(Product.Cli) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("add");
        psi.ArgumentList.Add("--no-measure");
        psi.ArgumentList.Add(program);
        psi.Environment.Clear();
        foreach (var (k, v) in s.BaseEnv())
            psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var clock = Stopwatch.StartNew();
        while (!p.HasExited && !when(clock))
            Thread.Sleep(1);
        if (!p.HasExited)
            p.Kill(entireProcessTree: true);
        p.WaitForExit();
    }

    /// <summary>
    /// Killed at each step of writing the image (tests/fixtures/probe_killat.c, preloaded into
    /// `resident add`): the old image stays byte for byte what it was, and in use.
    /// </summary>
    [Theory]
    [InlineData("write")]
    [InlineData("write3")]
    [InlineData("fsync")]
    [InlineData("rename")]
    public void AddKilledWhileWritingTheImage_OldImageIntact(string step)
    {
        using var s = new ResidentSession();
        var libs = fx.Path("libs");
        s.Register(libs);
        var image = Assert.Single(Directory.GetFiles(s.RegistryDir, "*.img"));
        var before = File.ReadAllBytes(image);
        var add = s.Cli(["add", libs], new Dictionary<string, string> { ["LD_PRELOAD"] = fx.Path("libprobekillat.so"), ["PROBE_KILL_AT"] = step });
        Assert.True(add.ExitCode == 128 + 9, $"resident add was not killed at {step}:\n{add}");
        Assert.Equal(before, File.ReadAllBytes(image));
        AssertOneValidImage(s, s.Spec(libs, "x"), libs);
        // the killed writer's temporary file stays until the next write into the registry removes it
        Assert.NotEmpty(Directory.GetFiles(s.RegistryDir, ".*.tmp"));
        s.Register(libs);
        Assert.Empty(Directory.GetFiles(s.RegistryDir, ".*.tmp"));
    }

    [Fact]
    public void AddKilledAfterDelays_OldImageIntact()
    {
        // delays that land in the tracer, the snapshot or the writer, depending on the machine
        using var s = new ResidentSession();
        var libs = fx.Path("libs");
        var spec = s.Spec(libs, "x");
        s.Register(libs);
        foreach (var ms in new[] { 0, 5, 15, 30, 60, 100 })
        {
            AddKilled(s, libs, clock => clock.ElapsedMilliseconds >= ms);
            AssertOneValidImage(s, spec, libs);
        }
        var list = s.Cli("list");
        Assert.True(list.ExitCode == 0 && list.StdoutText.Contains("fresh"), list.ToString());
    }

    /// <summary>A small tmpfs mounted as the registry for one test (root only: the suite runs as root).</summary>
    sealed class SmallDisk : IDisposable
    {
        public string Dir { get; }

        public SmallDisk(ResidentSession s, string size)
        {
            Dir = Directory.CreateDirectory(Path.Combine(s.Root, "small-disk")).FullName;
            var r = Mount("/bin/mount", "-t", "tmpfs", "-o", $"size={size},mode=0700", "tmpfs", Dir);
            Assert.True(r.ExitCode == 0, "this test mounts a tmpfs (needs root / CAP_SYS_ADMIN):\n" + r);
        }

        public void Dispose() => Mount("/bin/umount", "-l", Dir);

        static RunResult Mount(string program, params string[] args) =>
            ProcessRunner.Run(new RunSpec(program, args) { Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin" } });
    }

    /// <summary>`add` as it runs: timed (--force: registered whatever the ratio) or --no-measure.</summary>
    static string[] Add(bool measured, string program) => measured ? ["add", "--force", program] : ["add", program];

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // captured into a staging directory of the registry, then timed
    public void DiskFullDuringCapture_NothingWritten(bool measured)
    {
        // the image of libs is about 144 KB; the disk has 64 KB
        using var s = new ResidentSession { MeasureAdds = measured };
        using var disk = new SmallDisk(s, "64k");
        var env = new Dictionary<string, string> { ["RESIDENT_DIR"] = disk.Dir };
        var libs = fx.Path("libs");
        var add = s.Cli(Add(measured, libs), env);
        Assert.True(add.ExitCode != 0, "resident add succeeded on a full disk:\n" + add);
        Assert.True(add.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length == 1, "expected one line on stderr:\n" + add);
        Assert.True(Directory.GetFiles(disk.Dir, "*.img*").Length == 0, "a failed add left: " + string.Join(", ", Directory.GetFiles(disk.Dir)));
        Assert.Empty(Directory.GetDirectories(disk.Dir));
        var spec = s.Spec(libs, ["x"], env);
        var resident = s.RunResident(spec);
        Assert.Empty(ResidentSession.AssertSameOutput(s.RunNormal(spec), resident).Lines);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DiskFullDuringRecapture_OldImageIntact(bool measured)
    {
        using var s = new ResidentSession { MeasureAdds = measured };
        using var disk = new SmallDisk(s, "1m");
        var env = new Dictionary<string, string> { ["RESIDENT_DIR"] = disk.Dir };
        var libs = fx.Path("libs");
        var first = s.Cli(Add(measured, libs), env);
        Assert.True(first.ExitCode == 0, first.ToString());
        var image = Assert.Single(Directory.GetFiles(disk.Dir, "*.img"));
        var before = File.ReadAllBytes(image);
        using (var filler = new FileStream(Path.Combine(disk.Dir, "filler"), FileMode.CreateNew))
            try
            {
                filler.Write(new byte[1 << 20]);
            }
            catch (IOException)
            {
                // the disk is full now
            }
        var add = s.Cli(Add(measured, libs), env);
        Assert.True(add.ExitCode != 0, "resident add succeeded on a full disk:\n" + add);
        Assert.Equal(before, File.ReadAllBytes(image));
        Assert.True(Directory.GetFiles(disk.Dir, "*.tmp").Length == 0, "a failed add left: " + string.Join(", ", Directory.GetFiles(disk.Dir)));
        Assert.Empty(Directory.GetDirectories(disk.Dir));
        s.AssertSameResident(s.Spec(libs, ["x"], env), libs);
    }

    /// <summary>
    /// The executable replaced after the snapshot (a package upgrade during `add`): the image is
    /// not written under the new file's name, where it could never restore; add says so and
    /// registers nothing. The fixture's constructor renames a copy over itself at capture.
    /// </summary>
    [Fact]
    public void ExecutableReplacedDuringCapture_NothingRegistered()
    {
        using var s = new ResidentSession();
        var prog = Path.Combine(s.Root, "replaceself");
        var next = Path.Combine(s.Root, "replaceself.next");
        File.Copy(fx.Path("replaceself"), prog);
        File.Copy(fx.Path("replaceself"), next);
        File.SetUnixFileMode(prog, File.GetUnixFileMode(fx.Path("replaceself")));
        var add = s.Cli(["add", prog], new Dictionary<string, string> { ["REPLACE_SELF_WITH"] = next });
        Assert.False(File.Exists(next), "the constructor did not run at capture");
        Assert.True(add.ExitCode == 1, add.ToString());
        Assert.Equal($"resident: cannot register {prog}: {prog} was replaced during the capture; add it again\n", add.StderrText);
        Assert.Empty(s.ImageFiles());
        s.Register(prog); // and the new file registers
        s.AssertSameResident(s.Spec(prog), prog);
    }
}
