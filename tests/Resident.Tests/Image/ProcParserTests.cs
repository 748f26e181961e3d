using System.Buffers.Binary;
using Xunit;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;

namespace Resident.Tests.Image;

public class ProcMapsTests
{
    [Fact]
    public void ParsesFileLine()
    {
        var e = ProcMaps.ParseLine("7f450133d000-7f4501363000 r-xp 00001000 fe:00 331651                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        Assert.Equal(0x7f450133d000UL, e.Start);
        Assert.Equal(0x7f4501363000UL, e.End);
        Assert.Equal(MapsEntry.ProtRead | MapsEntry.ProtExec, e.Prot);
        Assert.False(e.Shared);
        Assert.Equal(0x1000UL, e.Offset);
        Assert.Equal((254u, 0u), (e.DevMajor, e.DevMinor));
        Assert.Equal(254UL << 8, e.Dev);
        Assert.Equal(331651UL, e.Inode);
        Assert.True(e.IsFile);
        Assert.Equal("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", e.Name);
    }

    [Fact]
    public void KeepsSpacesAndDeletedMarkerInNames()
    {
        var e = ProcMaps.ParseLine("1000-3000 rw-s 00000000 08:01 12 /tmp/a b/c (deleted)");
        Assert.Equal("/tmp/a b/c (deleted)", e.Name);
        Assert.True(e.Shared);
        Assert.Equal(MapsEntry.ProtRead | MapsEntry.ProtWrite, e.Prot);
        Assert.Equal(2UL * 4096, e.Length);
    }

    [Fact]
    public void ParsesAnonymousAndSpecialLines()
    {
        var maps = ProcMaps.Parse(
            "7f4501144000-7f4501147000 rw-p 00000000 00:00 0 \n" +
            "7ffc0bdb6000-7ffc0bdd7000 rw-p 00000000 00:00 0                          [stack]\n" +
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n");
        Assert.Equal(3, maps.Count);
        Assert.Equal("", maps[0].Name);
        Assert.False(maps[0].IsFile);
        Assert.True(maps[1].IsSpecial);
        Assert.Equal("[stack]", maps[1].Name);
        Assert.Equal(MapsEntry.ProtExec, maps[2].Prot);
        Assert.Equal(0xffffffffff601000UL, maps[2].End);
    }

    [Fact]
    public void LargeDeviceNumbersUseGlibcEncoding()
    {
        // makedev(0x1234, 0x56789) as glibc's gnu_dev_makedev computes it
        ulong major = 0x1234, minor = 0x56789;
        ulong expected = ((major & 0xfffff000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12) | (minor & 0xff);
        Assert.Equal(expected, MapsEntry.MakeDev(major, minor));
        Assert.Equal(0x103UL, MapsEntry.MakeDev(1, 3));
    }

    [Theory]
    [InlineData("")]
    [InlineData("zzzz-1000 r--p 0 00:00 0")]
    [InlineData("1000-2000 r--p 00000000 0000 0 x")]
    [InlineData("1000-2000 r-p 00000000 00:00 0")]
    public void RejectsMalformedLines(string line) =>
        Assert.Throws<FormatException>(() => ProcMaps.ParseLine(line));

    [Fact]
    public void ParsesThisProcess()
    {
        var maps = ProcMaps.Read(Environment.ProcessId);
        Assert.Single(maps, m => m.Name == "[stack]");
        Assert.Contains(maps, m => m.Name == "[vdso]");
        Assert.All(maps, m => Assert.True(m.Start < m.End && m.Start % 4096 == 0 && m.End % 4096 == 0));
        Assert.Equal(maps.OrderBy(m => m.Start).Select(m => m.Start), maps.Select(m => m.Start));
        // st_dev/st_ino from stat(2) equal what maps shows: the capture's cross-check relies on it.
        var libc = maps.First(m => m.IsFile && m.Name.Contains("/libc.so.6"));
        var entry = FileStamp.Of(libc.Name, ImageFormat.FileMapped)!;
        Assert.Equal((libc.Dev, libc.Inode), (entry.Dev, entry.Ino));
    }
}

public class AuxvTests
{
    static byte[] Pairs(params ulong[] words)
    {
        var b = new byte[words.Length * 8];
        for (int i = 0; i < words.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(i * 8), words[i]);
        return b;
    }

    [Fact]
    public void ParsesPairsUpToAtNull()
    {
        var a = Auxv.Parse(Pairs(Auxv.AT_HWCAP, 0xbfebfbff, Auxv.AT_BASE, 0x7f00_0000_0000, 0, 0, 99, 99));
        Assert.Equal(2, a.Entries.Count);
        Assert.Equal(0xbfebfbffUL, a.Get(Auxv.AT_HWCAP));
        Assert.Equal(0x7f00_0000_0000UL, a.Find(Auxv.AT_BASE));
        Assert.Null(a.Find(Auxv.AT_HWCAP2));
        Assert.Throws<FormatException>(() => a.Get(Auxv.AT_HWCAP2));
    }

    [Fact]
    public void RejectsMissingTerminator() =>
        Assert.Throws<FormatException>(() => Auxv.Parse(Pairs(Auxv.AT_HWCAP, 1)));

    [Fact]
    public void ParsesThisProcess()
    {
        var a = Auxv.Read(Environment.ProcessId);
        Assert.Equal(4096UL, a.Get(6)); // AT_PAGESZ
        var maps = ProcMaps.Read(Environment.ProcessId);
        ulong ldso = a.Get(Auxv.AT_BASE);
        Assert.Contains(maps, m => m.Start == ldso && m.Name.Contains("ld-linux-x86-64"));
        Assert.Contains(maps, m => m.Start == a.Get(Auxv.AT_SYSINFO_EHDR) && m.Name == "[vdso]");
        Assert.Equal(0UL, a.Get(Auxv.AT_SECURE));
    }
}

public class ProcLimitsTests
{
    const string Sample =
        "Limit                     Soft Limit           Hard Limit           Units     \n" +
        "Max cpu time              unlimited            unlimited            seconds   \n" +
        "Max stack size            8388608              unlimited            bytes     \n";

    [Fact]
    public void ReadsTheSoftStackLimit()
    {
        Assert.Equal(8388608UL, ProcLimits.StackSoftLimit(Sample));
        Assert.Equal(ProcLimits.Infinity, ProcLimits.StackSoftLimit(Sample.Replace("8388608 ", "unlimited")));
        Assert.Throws<FormatException>(() => ProcLimits.StackSoftLimit("Limit x\n"));
    }

    [Fact]
    public void ReadsThisProcess()
    {
        ulong soft = ProcLimits.StackSoftLimit(Environment.ProcessId);
        Assert.True(soft == ProcLimits.Infinity || soft >= 4096);
    }
}
