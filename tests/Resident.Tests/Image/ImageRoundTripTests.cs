using System.Runtime.InteropServices;
using Xunit;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;

namespace Resident.Tests.Image;

/// <summary>ImageWriter → ImageReader on a synthetic snapshot, and the reader's refusals of damaged files.</summary>
public sealed class ImageRoundTripTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("resident-img-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    string PathOf(string name) => Path.Combine(_dir, name);

    // Fields the writer owns (identity, layout, tables); every other header byte must survive as is.
    static readonly string[] WriterFields =
    [
        nameof(RsHeader.Magic), nameof(RsHeader.Version), nameof(RsHeader.HeaderSize), nameof(RsHeader.FileSize),
        nameof(RsHeader.MetaSize), nameof(RsHeader.Checksum), nameof(RsHeader.DataOffset), nameof(RsHeader.Id),
        nameof(RsHeader.ExePath), nameof(RsHeader.Files), nameof(RsHeader.Regions), nameof(RsHeader.Patches),
        nameof(RsHeader.Env), nameof(RsHeader.StringsOffset), nameof(RsHeader.StringsSize),
        nameof(RsHeader.CpuFeaturesLen), nameof(RsHeader.CpuFeaturesBlob), nameof(RsHeader.CpuFeaturesMask),
        nameof(RsHeader.Prefault), nameof(RsHeader.EnvDeps), nameof(RsHeader.FrameBlob),
        nameof(RsHeader.KernelOps), nameof(RsHeader.FallbackOffset), nameof(RsHeader.FallbackSize),
    ];

    internal static Snapshot Sample()
    {
        var header = new RsHeader();
        var rng = new Random(42);
        rng.NextBytes(MemoryMarshal.AsBytes(new Span<RsHeader>(ref header)));
        header.Level = ImageFormat.LevelLink;   // the init level's fields are 0 at the link level
        (header.FrameAddr, header.FrameResume, header.MmStartBrk, header.MmBrk) = (0, 0, 0, 0);
        byte[] page1 = new byte[4096], page2 = new byte[8192];
        rng.NextBytes(page1);
        rng.NextBytes(page2);
        return new Snapshot
        {
            Header = header,
            ExePath = "/usr/bin/prog",
            Files =
            [
                new("/usr/bin/prog", ImageFormat.FileMapped, 0xfe00, 1234, 40960, 1700000000, 123456789),
                new("/usr/lib/libx.so.1", ImageFormat.FileMapped, 0xfe00, 99, 8192, 1700000001, 5),
                new("/etc/ld.so.cache", ImageFormat.FileStamp, 0xfe00, 7, 100, 1, 2),
                FileEntry.Absent("/etc/ld.so.preload"),
            ],
            Regions =
            [
                new(0x400000, 0x402000, ImageFormat.RegionFile, 5, 0, 0x1000, 0, "/usr/bin/prog"),
                new(0x402000, 0x403000, ImageFormat.RegionImage, 1, 0, 0, ImageFormat.RegionFlagPatched, "/usr/bin/prog") { Pages = Region.SplitPages(page1) },
                new(0x403000, 0x405000, ImageFormat.RegionZero, 3, 0, 0, 0, ""),
                new(0x7f0000000000, 0x7f0000001000, ImageFormat.RegionFile, 5, 1, 0, 0, "/usr/lib/libx.so.1"),
                new(0x7f0000001000, 0x7f0000003000, ImageFormat.RegionImage, 3, 0, 0, ImageFormat.RegionFlagPatched, "/usr/lib/libx.so.1") { Pages = Region.SplitPages(page2) },
            ],
            Patches =
            [
                new(0x402008, ImageFormat.PatchArgc, 0, 0),
                new(0x402010, ImageFormat.PatchEnvString, 0, 16, "LD_LIBRARY_PATH"),
                new(0x7f0000001ff8, ImageFormat.PatchAuxvValue, (uint)Auxv.AT_RANDOM, 8),
                new(0x7f0000002000, ImageFormat.PatchArgv, 0, -8),
            ],
            Env = ["LD_LIBRARY_PATH=/opt", "MALLOC_ARENA_MAX=2"],
            CpuFeatures = Enumerable.Range(0, 480).Select(i => (byte)i).ToArray(),
            CpuFeaturesMask = Enumerable.Range(0, 480).Select(i => (byte)(i == 27 ? 0 : 0xff)).ToArray(),
            Prefault = [new RsSpan { Start = 0x400000, End = 0x401000 }, new RsSpan { Start = 0x7f0000000000, End = 0x7f0000001000 }],
        };
    }

    [Fact]
    public void EveryFieldSurvivesARoundTrip()
    {
        var s = Sample();
        string path = PathOf("a.img");
        long size = ImageWriter.Write(s, path, 77);
        Assert.Equal(new FileInfo(path).Length, size);
        var info = ImageReader.Read(path);
        var h = info.Header;

        unsafe { Assert.Equal("RESIDENT"u8.ToArray(), new ReadOnlySpan<byte>(h.Magic, 8).ToArray()); }
        Assert.Equal((ImageFormat.Version, 77UL, (ulong)size), (h.Version, h.Id, h.FileSize));
        Assert.Equal((uint)Marshal.SizeOf<RsHeader>(), h.HeaderSize);
        Assert.Equal(0UL, h.DataOffset % 4096);
        Assert.True(h.DataOffset >= h.MetaSize);
        Assert.Equal(ExpectedHeaderBytes(s.Header, h), HeaderBytes(h));

        Assert.Equal(s.ExePath, info.ExePath);
        Assert.Equal(s.Files, info.Files);
        Assert.Equal(s.Env, info.Env);
        Assert.Equal(s.CpuFeatures, info.CpuFeatures);
        Assert.Equal(s.CpuFeaturesMask, info.CpuFeaturesMask);
        Assert.Equal(s.Prefault, info.Prefault);
        // An env-string patch's index becomes the string-table offset of its name (checked below).
        Assert.Equal(s.Patches, info.Patches.Select(p => p with { Index = p.EnvName == null ? p.Index : 0 }));
        Assert.Equal(s.Regions.Select(r => r with { Offset = r.Kind == ImageFormat.RegionImage ? 0 : r.Offset, Pages = null }),
            info.Regions.Select(r => r with { Offset = r.Kind == ImageFormat.RegionImage ? 0 : r.Offset }));

        // IMAGE pages sit page-aligned at their offsets, in region order, after the metadata.
        var bytes = File.ReadAllBytes(path);
        for (int i = 0; i < s.Regions.Count; i++)
        {
            if (s.Regions[i].Kind != ImageFormat.RegionImage) continue;
            var r = info.Regions[i];
            Assert.Equal(0UL, r.Offset % 4096);
            Assert.True(r.Offset >= h.DataOffset);
            Assert.Equal(s.Regions[i].Pages!.SelectMany(p => p.ToArray()), bytes.AsSpan((int)r.Offset, (int)r.Length).ToArray());
        }
        Assert.Equal(0UL, (ulong)new FileInfo(path).Length % 4096);
    }

    /// <summary>An init-level image keeps its frames below main, its variables and the patch kinds of version 6.</summary>
    [Fact]
    public void InitLevelFieldsSurviveARoundTrip()
    {
        var s = Sample();
        s.Header.Level = ImageFormat.LevelInit;
        s.Header.OldStackArgc = 0x7ffc00001000;
        s.Header.FrameAddr = s.Header.OldStackArgc - 24;
        s.Header.FrameResume = 0x400100;
        (s.Header.MmStartBrk, s.Header.MmBrk) = (0x500000, 0x521000);
        var frame = new byte[24];
        new Random(7).NextBytes(frame);
        var init = s with
        {
            Frame = frame, EnvDeps = ["HOME=/root", "LLVM_UNSET"],
            KernelOps = [KernelOp.Sigaction(2, new byte[32]), KernelOp.Umask(0x17), KernelOp.Name("clang"u8)],
            Fallback = Sample(),
            Patches =
            [
                .. s.Patches,
                new(s.Header.FrameAddr + 8, ImageFormat.PatchArgcCount, 4, 0x100000000),
                new(0x402018, ImageFormat.PatchArgBasename, 0, 0),
                new(0x402020, ImageFormat.PatchMangled, 0, 0x400123),
                new(s.Header.FrameAddr + 16, ImageFormat.PatchMangledArgc, 0, -8),
                new(0x7f0000001000, ImageFormat.PatchRandom, 0, 0),
                new(0x7f0000001008, ImageFormat.PatchCanary, 0, 0),
            ],
        };
        string path = PathOf("init.img");
        ImageWriter.Write(init, path, 5);
        var info = ImageReader.Read(path);
        Assert.Equal("init", info.LevelName);
        Assert.Equal(["HOME=/root", "LLVM_UNSET"], info.EnvDeps);
        Assert.Equal(init.Patches.Select(p => p.ToString()), info.Patches.Select(p => p.ToString()));
        Assert.Equal((s.Header.FrameAddr, s.Header.FrameResume, 0x500000UL, 0x521000UL),
            (info.Header.FrameAddr, info.Header.FrameResume, info.Header.MmStartBrk, info.Header.MmBrk));
        byte[] meta = File.ReadAllBytes(path);
        Assert.Equal(frame, meta.AsSpan((int)info.Header.FrameBlob, frame.Length).ToArray());
        Assert.Equal(["sigaction SIGINT: default", "umask 027", "name \"clang\""], info.KernelOps.Select(k => k.ToString()));
        // the link-level image it carries: whole, at the end, its offsets from its own start
        var fb = info.Fallback ?? throw new Xunit.Sdk.XunitException("the fallback image was not read back");
        Assert.Equal("link", fb.LevelName);
        Assert.Equal((ulong)meta.Length, info.Header.FallbackOffset + info.Header.FallbackSize);
        Assert.Equal(fb.Header.FileSize, info.Header.FallbackSize);
        Assert.Equal(init.Fallback.Files, fb.Files);
        var r = fb.Regions.First(r => r.Kind == ImageFormat.RegionImage);
        Assert.Equal(init.Fallback.Regions.First(r => r.Kind == ImageFormat.RegionImage).Pages!.SelectMany(p => p.ToArray()),
            meta.AsSpan((int)(info.Header.FallbackOffset + r.Offset), (int)r.Length).ToArray());
        Assert.True(info.Regions.Where(r => r.Kind == ImageFormat.RegionImage).All(r => r.Offset + r.Length <= info.Header.FallbackOffset));
    }

    [Fact]
    public void EnvStringPatchIndexIsTheNameInTheStringTable()
    {
        string path = PathOf("b.img");
        ImageWriter.Write(Sample(), path, 1);
        var info = ImageReader.Read(path);
        var p = info.Patches.Single(p => p.Kind == ImageFormat.PatchEnvString);
        var meta = File.ReadAllBytes(path);
        Assert.Equal("LD_LIBRARY_PATH", StringTable.Get(meta.AsSpan((int)info.Header.StringsOffset, (int)info.Header.StringsSize), p.Index));
        Assert.Equal("LD_LIBRARY_PATH", p.EnvName);
    }

    [Fact]
    public void FlippedByteIsAChecksumError()
    {
        string path = PathOf("c.img");
        ImageWriter.Write(Sample(), path, 1);
        var bytes = File.ReadAllBytes(path);
        int at = Marshal.SizeOf<RsHeader>() + 3; // inside the files table
        bytes[at] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => ImageReader.Read(path));
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public void TruncatedFileIsASizeError()
    {
        string path = PathOf("d.img");
        ImageWriter.Write(Sample(), path, 1);
        using (var f = File.OpenWrite(path)) f.SetLength(f.Length - 4096);
        var e = Assert.Throws<InvalidDataException>(() => ImageReader.Read(path));
        Assert.Contains("size mismatch", e.Message);
        File.WriteAllBytes(path, new byte[100]);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => ImageReader.Read(path)).Message);
    }

    [Fact]
    public void ForeignFilesAreRefused()
    {
        string path = PathOf("e.img");
        ImageWriter.Write(Sample(), path, 1);
        var bytes = File.ReadAllBytes(path);
        bytes[0] = (byte)'X';
        File.WriteAllBytes(path, bytes);
        Assert.Contains("bad magic", Assert.Throws<InvalidDataException>(() => ImageReader.Read(path)).Message);

        ImageWriter.Write(Sample(), path, 1);
        bytes = File.ReadAllBytes(path);
        bytes[8] = 99; // version
        File.WriteAllBytes(path, bytes);
        Assert.Contains("version 99", Assert.Throws<InvalidDataException>(() => ImageReader.Read(path)).Message);
    }

    [Fact]
    public void CorruptTablesAreRefusedEvenWithAValidChecksum()
    {
        string path = PathOf("f.img");
        ImageWriter.Write(Sample(), path, 1);
        var bytes = File.ReadAllBytes(path);
        var h = MemoryMarshal.Read<RsHeader>(bytes);
        h.Regions.Count = 100000; // beyond the metadata
        Rewrite(path, bytes, h);
        Assert.Contains("outside the metadata", Assert.Throws<InvalidDataException>(() => ImageReader.Read(path)).Message);

        h = MemoryMarshal.Read<RsHeader>(bytes);
        h.Files.EntrySize = 40;
        h.Regions.Count = 5;
        Rewrite(path, bytes, h);
        Assert.Contains("entry size", Assert.Throws<InvalidDataException>(() => ImageReader.Read(path)).Message);
    }

    [Fact]
    public void RegionsTheRestorerWouldRefuseAreRefused()
    {
        var s = Sample();
        string path = PathOf("r.img");
        ImageWriter.Write(With(s, [s.Regions[0] with { End = 0x400000 + 11 * 4096 }]), path, 1); // file is 10 pages
        Assert.Contains("past the end", Assert.Throws<InvalidDataException>(() => ImageReader.Read(path)).Message);
        ImageWriter.Write(With(s, [s.Regions[2] with { Prot = 5 }]), path, 1);
        Assert.Contains("executable", Assert.Throws<InvalidDataException>(() => ImageReader.Read(path)).Message);
    }

    static Snapshot With(Snapshot s, IReadOnlyList<Region> regions) => new()
    {
        Header = s.Header, ExePath = s.ExePath, Files = s.Files, Patches = [], Env = s.Env,
        CpuFeatures = s.CpuFeatures, CpuFeaturesMask = s.CpuFeaturesMask, Regions = regions,
    };

    [Fact]
    public void WriteReplacesAtomicallyAndLeavesNothingBehindOnFailure()
    {
        string path = PathOf("g.img");
        ImageWriter.Write(Sample(), path, 1);
        var before = File.ReadAllBytes(path);

        var bad = Sample();
        var broken = new Snapshot
        {
            Header = bad.Header, ExePath = bad.ExePath, Files = bad.Files, Patches = bad.Patches, Env = bad.Env,
            CpuFeatures = bad.CpuFeatures, CpuFeaturesMask = bad.CpuFeaturesMask,
            Regions = [bad.Regions[0], bad.Regions[1] with { Pages = [new byte[10]] }],
        };
        Assert.ThrowsAny<Exception>(() => ImageWriter.Write(broken, path, 2));
        Assert.Equal(before, File.ReadAllBytes(path));

        // A failure after the temporary file exists: rename(2) onto a non-empty directory.
        string dirTarget = PathOf("h.img");
        Directory.CreateDirectory(Path.Combine(dirTarget, "sub"));
        var e = Assert.Throws<RefusalException>(() => ImageWriter.Write(Sample(), dirTarget, 3));
        Assert.StartsWith("cannot write image: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(["g.img", "h.img"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName).Order());

        ImageWriter.Write(Sample(), path, 9);
        Assert.Equal(9UL, ImageReader.Read(path).Header.Id);
    }

    [Fact]
    public void StalenessNamesWhatChanged()
    {
        string lib = PathOf("libfake.so"), exe = PathOf("prog"), absent = PathOf("not-there.so");
        File.WriteAllText(lib, "v1");
        File.WriteAllText(exe, "exe");
        var s = Sample();
        var (release, version) = Interop.Uname();
        var header = s.Header;
        var auxv = Auxv.Read(Environment.ProcessId);
        header.Hwcap = auxv.Get(Auxv.AT_HWCAP);
        header.Hwcap2 = auxv.Find(Auxv.AT_HWCAP2) ?? 0;
        unsafe
        {
            FixedText.Set(header.KernelRelease, 65, release, "r");
            FixedText.Set(header.KernelVersion, 65, version, "v");
            FixedText.Set(header.Platform, 16, "x86_64", "p");
        }
        var snapshot = new Snapshot
        {
            Header = header, ExePath = exe, Patches = [], Env = [], CpuFeatures = [], CpuFeaturesMask = [], Regions = [],
            Files = [FileStamp.Of(exe, ImageFormat.FileMapped)!, FileStamp.Of(lib, ImageFormat.FileMapped)!, FileEntry.Absent(absent)],
        };
        string path = PathOf("s.img");
        ImageWriter.Write(snapshot, path, 1);
        Assert.Null(Staleness.Of(ImageReader.Read(path)));

        var other = header;
        unsafe { FixedText.Set(other.KernelRelease, 65, release + "-other", "r"); }
        ImageWriter.Write(new Snapshot { Header = other, ExePath = exe, Patches = [], Env = [], CpuFeatures = [],
            CpuFeaturesMask = [], Regions = [], Files = snapshot.Files }, PathOf("k.img"), 1);
        Assert.Equal("kernel changed", Staleness.Of(ImageReader.Read(PathOf("k.img"))));
        other = header;
        other.Hwcap2 ^= 2;
        ImageWriter.Write(new Snapshot { Header = other, ExePath = exe, Patches = [], Env = [], CpuFeatures = [],
            CpuFeaturesMask = [], Regions = [], Files = snapshot.Files }, PathOf("c.img"), 1);
        Assert.Equal("cpu differs: hwcap", Staleness.Of(ImageReader.Read(PathOf("c.img"))));

        File.WriteAllText(absent, "");
        Assert.Equal($"file appeared: {absent}", Staleness.Of(ImageReader.Read(path)));
        File.Delete(absent);

        File.WriteAllText(lib, "v2 longer");
        Assert.Equal($"library changed: {lib}", Staleness.Of(ImageReader.Read(path)));
        File.Delete(lib);
        Assert.Equal($"library missing: {lib}", Staleness.Of(ImageReader.Read(path)));

        File.WriteAllText(exe, "exe2");
        Assert.Equal("executable changed", Staleness.Of(ImageReader.Read(path)));
    }

    static void Rewrite(string path, byte[] bytes, RsHeader h)
    {
        h.Checksum = 0;
        MemoryMarshal.Write(bytes, in h);
        h.Checksum = ImageFormat.Checksum(bytes.AsSpan(0, (int)h.MetaSize));
        MemoryMarshal.Write(bytes, in h);
        File.WriteAllBytes(path, bytes);
    }

    static byte[] HeaderBytes(RsHeader h) => MemoryMarshal.AsBytes(new Span<RsHeader>(ref h)).ToArray();

    /// <summary>The snapshot's header with the writer-owned fields taken from the written one.</summary>
    static byte[] ExpectedHeaderBytes(RsHeader snapshot, RsHeader written)
    {
        var expected = HeaderBytes(snapshot);
        var actual = HeaderBytes(written);
        foreach (var name in WriterFields)
        {
            int off = (int)Marshal.OffsetOf<RsHeader>(name);
            int size = Marshal.SizeOf(typeof(RsHeader).GetField(name)!.FieldType);
            actual.AsSpan(off, size).CopyTo(expected.AsSpan(off));
        }
        return expected;
    }
}
