using Xunit;
using Resident.Elf;
using Resident.Tests.Capture;

namespace Resident.Tests.Elf;

/// <summary>Refusals made from the file alone: each must be a RefusalException naming the reason.</summary>
public sealed class ProgramFileCheckTests : IDisposable
{
    const string Main = "int main(void) { return 0; }\n";
    readonly NativeBuild _build = new();

    public void Dispose() => _build.Dispose();

    static void Refused(string path, string reason)
    {
        var e = Assert.Throws<RefusalException>(() => ProgramFileCheck.Check(path));
        Assert.Contains(reason, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AcceptsPerlAndResolvesSymlinks()
    {
        string link = Path.Combine(_build.Dir, "perl-link");
        File.CreateSymbolicLink(link, "/usr/bin/perl");
        var result = ProgramFileCheck.Check(link);
        Assert.Equal("/usr/bin/perl", result.ProgramPath);
        Assert.Equal("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", result.Interpreter);
        Assert.Equal(result.ResumePoint.ResumePc + 3, result.ResumePoint.ResumeCont);
    }

    [Fact]
    public void AcceptsGccProgram() =>
        Assert.Equal(Path.Combine(_build.Dir, "hello"), ProgramFileCheck.Check(_build.Compile("hello", Main)).ProgramPath);

    [Fact]
    public void RefusesMissingFile() => Refused(Path.Combine(_build.Dir, "nothing"), "no such file");

    [Fact]
    public void RefusesDirectory() => Refused(_build.Dir, "is a directory");

    [Fact]
    public void RefusesDeviceFile() => Refused("/dev/null", "not a regular file");

    [Fact]
    public void RefusesScript()
    {
        string script = Path.Combine(_build.Dir, "script");
        File.WriteAllText(script, "#!/bin/sh\necho hi\n");
        File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        Refused(script, "a script (#!)");
    }

    [Fact]
    public void RefusesTextFile()
    {
        string text = Path.Combine(_build.Dir, "text");
        File.WriteAllText(text, "just some text, long enough to be more than an ELF header would need to be read\n");
        File.SetUnixFileMode(text, (UnixFileMode)0b111_101_101);
        Refused(text, "not an ELF program");
    }

    [Fact]
    public void RefusesNonExecutable()
    {
        string copy = _build.Copy("/usr/bin/true", "true-noexec");
        File.SetUnixFileMode(copy, (UnixFileMode)0b110_100_100);
        Refused(copy, "not executable");
    }

    [Fact]
    public void RefusesSetuid()
    {
        string copy = _build.Copy("/usr/bin/true", "true-suid");
        File.SetUnixFileMode(copy, (UnixFileMode)0b100_111_101_101);
        Refused(copy, "setuid");
    }

    [Fact]
    public void RefusesSetgid()
    {
        string copy = _build.Copy("/usr/bin/true", "true-sgid");
        File.SetUnixFileMode(copy, (UnixFileMode)0b010_111_101_101);
        Refused(copy, "setgid");
    }

    [Fact]
    public void RefusesFileCapabilities()
    {
        Assert.True(File.Exists("/usr/sbin/setcap"), "setcap is missing: ./setup.sh installs libcap2-bin");
        string copy = _build.Copy("/usr/bin/true", "true-caps");
        NativeBuild.Run("/usr/sbin/setcap", $"cap_net_raw+ep {copy}");
        Refused(copy, "file capabilities");
    }

    [Fact]
    public void RefusesStaticExecutable() =>
        Refused(_build.Compile("static", Main, "-static"), "statically linked");

    [Fact]
    public void RefusesStaticPie() =>
        Refused(_build.Compile("staticpie", Main, "-static-pie"), "static-pie");

    [Fact]
    public void RefusesSharedLibrary() =>
        Refused(_build.Compile("libthing.so", "int thing(void) { return 1; }\n", "-shared -fPIC"), "shared library");

    [Fact]
    public void RefusesOtherArchitecture()
    {
        string copy = _build.Copy(_build.Compile("arm", Main), "arm-patched");
        using (var f = File.OpenHandle(copy, FileMode.Open, FileAccess.Write))
            RandomAccess.Write(f, BitConverter.GetBytes((ushort)183), 18);   // e_machine = EM_AARCH64
        Refused(copy, "not an x86_64 program");
    }

    [Fact]
    public void RefusesOtherInterpreter()
    {
        string ld = _build.Copy("/lib64/ld-linux-x86-64.so.2", "ld-copy.so");
        Refused(_build.Compile("otherld", Main, $"-Wl,--dynamic-linker={ld}"), "not the system glibc loader");
    }

    [Fact]
    public void RefusesMissingInterpreter() =>
        Refused(_build.Compile("nold", Main, $"-Wl,--dynamic-linker={_build.Dir}/nowhere/ld.so"), "does not exist");
}
