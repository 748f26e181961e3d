using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// `resident add` refuses what it cannot (or must not) make resident: non-zero exit, exactly one
/// line on stderr, and nothing written to the registry.
/// </summary>
public sealed class RefusalTests(Fixtures fx) : IClassFixture<Fixtures>
{
    public static TheoryData<string> Cases => ["static", "shared library", "script", "missing", "not ELF", "setuid", "setgid", "directory"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void AddRefuses(string kind)
    {
        using var s = new ResidentSession();
        var target = Prepare(s, kind);
        var r = s.Cli("add", target);
        Assert.True(r.ExitCode != 0, $"resident add accepted a {kind}:\n{r}");
        var lines = r.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected exactly one line on stderr:\n{r}");
        Assert.True(!s.ImageFiles().Any(), $"refused add left files in the registry: {string.Join(", ", s.ImageFiles())}\n{r}");
        var list = s.Cli("list");
        Assert.DoesNotContain(target, list.StdoutText);
        Assert.DoesNotContain(Path.GetFileName(target), list.StdoutText);
    }

    [Fact]
    public void AddRefuses_RegistryNotWritable()
    {
        // a path below a regular file can never become a directory (root ignores permissions)
        using var s = new ResidentSession();
        var file = Path.Combine(s.Root, "a-file");
        File.WriteAllText(file, "");
        var r = s.Cli(["add", fx.Path("args")], new Dictionary<string, string> { ["RESIDENT_DIR"] = Path.Combine(file, "registry") });
        Assert.True(r.ExitCode != 0, "resident add succeeded without a registry:\n" + r);
        Assert.True(r.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length == 1, "expected exactly one line on stderr:\n" + r);
        Assert.Equal(0, new FileInfo(file).Length);
    }

    /// <summary>A file of the given kind in the session's directory (copies: nothing outside temp is touched).</summary>
    string Prepare(ResidentSession s, string kind)
    {
        var dir = s.WorkDir;
        string CopyOf(string fixture, string name)
        {
            var p = Path.Combine(dir, name);
            File.Copy(fx.Path(fixture), p);
            return p;
        }
        switch (kind)
        {
            case "static":
                return CopyOf("static_hello", "static_hello");
            case "shared library":
                return CopyOf("libalpha.so", "libalpha.so");
            case "script":
                var script = Path.Combine(dir, "script.sh");
                File.WriteAllText(script, "#!/bin/sh\necho hi\n");
                File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
                return script;
            case "missing":
                return Path.Combine(dir, "does-not-exist");
            case "not ELF":
                var data = Path.Combine(dir, "data.bin");
                File.WriteAllBytes(data, [0x7f, (byte)'E', (byte)'L', (byte)'X', 1, 2, 3, 4]);
                File.SetUnixFileMode(data, (UnixFileMode)0b111_101_101);
                return data;
            case "setuid":
                var su = CopyOf("args", "args_setuid");
                File.SetUnixFileMode(su, UnixFileMode.SetUser | (UnixFileMode)0b111_101_101);
                return su;
            case "setgid":
                var sg = CopyOf("args", "args_setgid");
                File.SetUnixFileMode(sg, UnixFileMode.SetGroup | (UnixFileMode)0b111_101_101);
                return sg;
            case "directory":
                return Directory.CreateDirectory(Path.Combine(dir, "a-directory")).FullName;
            default:
                throw new ArgumentException(kind);
        }
    }

    [Fact]
    public void FixturesOfTheRefusalCasesAreWhatTheyClaim()
    {
        // the normal side: the static fixture really is static and runs
        using var s = new ResidentSession();
        var headers = ProcessRunner.Run(new RunSpec("/usr/bin/readelf", ["-lW", fx.Path("static_hello")]) { Env = s.BaseEnv() });
        Assert.True(headers.ExitCode == 0 && headers.StdoutText.Contains("LOAD") && !headers.StdoutText.Contains("INTERP"), headers.ToString());
        var run = s.RunNormal(s.Spec(fx.Path("static_hello"), "4"));
        Assert.Equal(4, run.ExitCode);
    }
}
