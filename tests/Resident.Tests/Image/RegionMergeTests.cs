using Xunit;
using Resident.Elf;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;
using Resident.Snapshots;
using PageInfo = Resident.Snapshots.RegionBuilder.PageInfo;

namespace Resident.Tests.Image;

public class RegionMergeTests
{
    const uint R = 1, RW = 3, RX = 5;

    static PageInfo File(ulong addr, uint prot, uint file, ulong off, string name = "/lib/x.so") =>
        new(addr, ImageFormat.RegionFile, prot, file, off, name);

    static PageInfo Saved(ulong addr, uint prot, byte fill) =>
        new(addr, ImageFormat.RegionImage, prot, 0, 0, "/lib/x.so", Enumerable.Repeat(fill, 4096).ToArray());

    static PageInfo Zero(ulong addr, uint prot) => new(addr, ImageFormat.RegionZero, prot, 0, 0, "");

    [Fact]
    public void MergesContiguousAlikePages()
    {
        var regions = RegionBuilder.Merge([
            File(0x10000, R, 1, 0), File(0x11000, R, 1, 0x1000),   // one FILE region
            File(0x12000, RX, 1, 0x2000),                          // prot differs
            File(0x13000, RX, 1, 0x5000),                          // offset not contiguous
            Saved(0x14000, RW, 1), Saved(0x15000, RW, 2),          // one IMAGE region, bytes concatenated
            Zero(0x16000, RW), Zero(0x17000, RW),                  // one ZERO region
            Zero(0x19000, RW),                                     // address gap
        ]);
        Assert.Equal(
            [(0x10000UL, 0x12000UL, ImageFormat.RegionFile, 0UL), (0x12000, 0x13000, ImageFormat.RegionFile, 0x2000),
             (0x13000, 0x14000, ImageFormat.RegionFile, 0x5000), (0x14000, 0x16000, ImageFormat.RegionImage, 0),
             (0x16000, 0x18000, ImageFormat.RegionZero, 0), (0x19000, 0x1a000, ImageFormat.RegionZero, 0)],
            regions.Select(r => (r.Start, r.End, r.Kind, r.Offset)));
        var pages = regions[3].Pages!;
        Assert.Equal(2, pages.Count);
        Assert.Equal((byte)1, pages[0].Span[4095]);
        Assert.Equal((byte)2, pages[1].Span[0]);
        Assert.Null(regions[0].Pages);
    }

    [Fact]
    public void DifferentFilesDoNotMerge()
    {
        var regions = RegionBuilder.Merge([File(0x10000, R, 1, 0x1000), File(0x11000, R, 2, 0x2000)]);
        Assert.Equal(2, regions.Count);
        Assert.Equal([1u, 2u], regions.Select(r => r.File));
    }

    [Fact]
    public void SortsByAddress()
    {
        var regions = RegionBuilder.Merge([Zero(0x30000, R), File(0x10000, R, 1, 0)]);
        Assert.Equal([0x10000UL, 0x30000UL], regions.Select(r => r.Start));
    }
}

public class SnapshotRulesTests
{
    [Fact]
    public void EnvTableKeepsLoaderAndMallocVariablesSorted()
    {
        var env = EnvRule.Select([
            "PATH=/bin", "MALLOC_ARENA_MAX=2", "LD_AUDIT=/x.so", "LD_BIND_NOW=1", "LD_PRELOAD=/p.so",
            "GLIBC_TUNABLES=glibc.malloc.check=3", "LD_LIBRARY_PATH=/opt", "XLD_FOO=1", "LD_=1",
        ]);
        Assert.Equal(["GLIBC_TUNABLES=glibc.malloc.check=3", "LD_=1", "LD_LIBRARY_PATH=/opt", "LD_PRELOAD=/p.so",
            "MALLOC_ARENA_MAX=2"], env);
    }

    [Fact]
    public void LdsoCpuFeaturesPatternIsDecoded()
    {
        // glibc 2.36: 16750: 48 8d 05 d9 c3 01 00   lea 0x1c3d9(%rip),%rax ; 16757: c3 ret
        Assert.Equal(0x32b30UL, LdsoFacts.DecodeCpuFeaturesAddress([0x48, 0x8d, 0x05, 0xd9, 0xc3, 0x01, 0x00, 0xc3], 0x16750));
        Assert.Null(LdsoFacts.DecodeCpuFeaturesAddress([0x48, 0x8d, 0x05, 0xd9, 0xc3, 0x01, 0x00, 0x90], 0x16750));
        Assert.Null(LdsoFacts.DecodeCpuFeaturesAddress([0x48, 0x8d, 0x1d, 0xd9, 0xc3, 0x01, 0x00, 0xc3], 0x16750)); // rbx
    }

    [Fact]
    public void CpuFeaturesEndWhereAnAddressBegins()
    {
        static byte[] Words(params ulong[] w) => w.SelectMany(BitConverter.GetBytes).ToArray();
        Func<ulong, bool> mapped = a => a >= 0x7f0000000000 && a < 0x7f0000100000;
        var sizes = Enumerable.Repeat(0x100000UL, 66).ToArray();   // cache sizes and thresholds: numbers, not addresses
        Assert.Equal(528, LdsoFacts.CpuFeaturesEnd(Words([.. sizes, 0x7f0000001234, 0x7f0000005678]), mapped));
        Assert.Equal(536, LdsoFacts.CpuFeaturesEnd(Words([.. sizes, 0, 0x7f0000001234]), mapped));   // a zero word: the same in every exec
        Assert.Equal(66 * 8, LdsoFacts.CpuFeaturesEnd(Words(sizes), mapped));   // up to what the file allows
        Assert.Throws<RefusalException>(() => LdsoFacts.CpuFeaturesEnd(Words([1, 0x7f0000000010, .. sizes]), mapped));
    }

    [Fact]
    public void CpuFeaturesWithoutThisCpusLeaf1AreRefused()
    {
        var e = Assert.Throws<RefusalException>(() => LdsoFacts.CpuFeaturesMask(new byte[480]));
        Assert.Contains("CPUID leaf 1", e.Message);
    }

    [Fact]
    public void RealLdsoFacts()
    {
        string ldso = "/lib64/ld-linux-x86-64.so.2";
        var facts = LdsoFacts.Read(ldso);
        var (size, leaf1Ebx) = Portability.LdsoDebugInfo.CpuFeatures(ldso);
        // This process's own ld.so: the struct as it filled it in, this CPU's leaf 1 in it.
        var maps = ProcMaps.Read(Environment.ProcessId);
        ulong live = Auxv.Read(Environment.ProcessId).Get(Auxv.AT_BASE) + facts.CpuFeaturesOff;
        byte[] struct_;
        unsafe { struct_ = new ReadOnlySpan<byte>((void*)live, facts.CpuFeaturesMaxLen).ToArray(); }
        Assert.Equal(size, LdsoFacts.CpuFeaturesEnd(struct_, a => maps.Any(m => m.Start <= a && a < m.End)));
        var mask = LdsoFacts.CpuFeaturesMask(struct_.AsSpan(0, size));
        Assert.Equal([leaf1Ebx + 3], Enumerable.Range(0, mask.Length).Where(i => mask[i] != 0xff));
        Assert.Equal(0, mask[leaf1Ebx + 3]);
        // The gadget is in ld.so's text: the same bytes are at the same offset in this process's ld.so.
        ulong at = Auxv.Read(Environment.ProcessId).Get(Auxv.AT_BASE) + facts.SyscallRetOff;
        Assert.Contains(maps, m => m.Start <= at && at < m.End && (m.Prot & MapsEntry.ProtExec) != 0 && m.Name.Contains("ld-linux"));
        unsafe { Assert.Equal([0x0f, 0x05, 0xc3], new ReadOnlySpan<byte>((void*)at, 3).ToArray()); }
    }
}

public class ZeroAbsorptionTests
{
    const uint R = 1, RW = 3;

    static RegionBuilder.PageInfo P(ulong addr, uint kind, uint prot) =>
        new(addr, kind, prot, 0, 0, "", kind == ImageFormat.RegionImage ? new byte[4096] : ReadOnlyMemory<byte>.Empty);

    [Fact]
    public void ShortZeroRunsNextToSavedPagesOfTheSameProtBecomeOneRegion()
    {
        // data (saved) + bss (zero) + anonymous saved page: one IMAGE region
        var pages = new List<RegionBuilder.PageInfo> { P(0x10000, ImageFormat.RegionImage, RW) };
        for (ulong a = 0x11000; a < 0x15000; a += 0x1000) pages.Add(P(a, ImageFormat.RegionZero, RW));
        pages.Add(P(0x15000, ImageFormat.RegionImage, RW));
        var regions = RegionBuilder.Merge(RegionBuilder.AbsorbZeroRuns(pages));
        var r = Assert.Single(regions);
        Assert.Equal((0x10000UL, 0x16000UL, ImageFormat.RegionImage), (r.Start, r.End, r.Kind));
        Assert.Equal(6, r.Pages!.Count);
        Assert.All(r.Pages, p => Assert.Equal(4096, p.Length));
    }

    [Fact]
    public void LongRunsOtherProtsAndGapsStayZero()
    {
        var pages = new List<RegionBuilder.PageInfo> { P(0x10000, ImageFormat.RegionImage, RW) };
        for (int i = 1; i <= RegionBuilder.MaxAbsorbedZeroPages + 1; i++) pages.Add(P(0x10000 + (ulong)i * 0x1000, ImageFormat.RegionZero, RW));
        pages.Add(P(0x100000, ImageFormat.RegionImage, R));
        pages.Add(P(0x101000, ImageFormat.RegionZero, RW));   // prot differs from the saved page before it
        pages.Add(P(0x200000, ImageFormat.RegionImage, RW));
        pages.Add(P(0x202000, ImageFormat.RegionZero, RW));   // not adjacent (gap at 0x201000)
        var regions = RegionBuilder.Merge(RegionBuilder.AbsorbZeroRuns(pages));
        Assert.Equal([ImageFormat.RegionImage, ImageFormat.RegionZero, ImageFormat.RegionImage, ImageFormat.RegionZero,
            ImageFormat.RegionImage, ImageFormat.RegionZero], regions.Select(r => r.Kind));
    }
}
