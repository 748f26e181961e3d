using System.Runtime.InteropServices;
using Resident.Proc;

namespace Resident.Format;

/// <summary>
/// Reads an image file's metadata (not its pages) with the checks that need the file alone:
/// identity (magic, version, sizes), checksum, every table within the metadata — so that
/// list, show and refresh say what a corrupt or foreign file is in one line. The hook's
/// validation goes further (native/restore.c: rs_image_parse checks regions, patches and
/// their consistency; rs_check_live this exec): whether an image restores is the hook's to
/// say, and `resident doctor PROG` asks it (RESIDENT_PROBE) instead of repeating it here.
/// </summary>
public static class ImageReader
{
    static readonly int HeaderSize = Marshal.SizeOf<RsHeader>();

    /// <summary>The image at <paramref name="path"/>; InvalidDataException with a one-line reason if corrupt.</summary>
    public static ImageInfo Read(string path)
    {
        using var f = File.OpenHandle(path);
        long length = RandomAccess.GetLength(f);
        var info = ReadAt(f, path, 0, length);
        var h = info.Header;
        if (h.FallbackSize == 0)
            return info;
        // the link-level image this one carries: a whole image at the end of the file
        if (h.FallbackOffset % ImageFormat.PageSize != 0 || h.FallbackOffset < h.DataOffset || h.FallbackOffset + h.FallbackSize != (ulong)length
            || info.EnvDeps.Count == 0)
            throw new InvalidDataException("the fallback image is not at the end of the file");
        var fallback = ReadAt(f, path, (long)h.FallbackOffset, (long)h.FallbackSize);
        if (fallback.Header.Level != ImageFormat.LevelLink || fallback.Header.FallbackSize != 0)
            throw new InvalidDataException("the fallback image is not a link-level image");
        return info with { Fallback = fallback };
    }

    /// <summary>The image of <paramref name="length"/> bytes at <paramref name="at"/> in the file (its offsets count from there).</summary>
    static ImageInfo ReadAt(Microsoft.Win32.SafeHandles.SafeFileHandle f, string path, long at, long length)
    {
        if (length < HeaderSize)
            throw new InvalidDataException($"truncated: {length} bytes, the header alone is {HeaderSize}");
        var head = new byte[HeaderSize];
        RandomAccess.Read(f, head, at);
        var h = CheckIdentity(head, length);
        var meta = new byte[h.MetaSize];
        if (RandomAccess.Read(f, meta, at) != meta.Length)
            throw new InvalidDataException("truncated metadata");
        return Parse(path, meta);
    }

    /// <summary>Parses a metadata block [0, meta_size) whose header passed <see cref="CheckIdentity"/>.</summary>
    public static ImageInfo Parse(string path, byte[] meta)
    {
        var h = MemoryMarshal.Read<RsHeader>(meta);
        CheckChecksum(meta, h.Checksum);

        var strings = Slice(meta, h.StringsOffset, h.StringsSize, "string table").ToArray();
        string Str(uint offset) => StringTable.Get(strings, offset);

        var files = Table<RsFile>(meta, h.Files, "files").Select(f =>
            new FileEntry(Str(f.Path), f.Flags, f.Dev, f.Ino, f.Size, f.MtimeSec, f.MtimeNsec, f.CtimeSec, f.CtimeNsec)).ToList();
        if (files.Count == 0)
            throw new InvalidDataException("no files[0]: the executable is missing");
        var regions = Table<RsRegion>(meta, h.Regions, "regions").Select(r =>
            new Region(r.Start, r.End, r.Kind, r.Prot, r.File, r.Offset, r.Flags, Str(r.Name))).ToList();
        var patches = Table<RsPatch>(meta, h.Patches, "patches").Select(p =>
            new Patch(p.Addr, p.Kind, p.Index, p.Delta, p.Kind == ImageFormat.PatchEnvString ? Str(p.Index) : null)).ToList();
        var env = Table<uint>(meta, h.Env, "env").Select(Str).ToList();
        var prefault = Table<RsSpan>(meta, h.Prefault, "prefault");
        if (prefault.Length > ImageFormat.PrefaultMax)
            throw new InvalidDataException($"{prefault.Length} prefault spans, at most {ImageFormat.PrefaultMax}");
        var cpu = Slice(meta, h.CpuFeaturesBlob, h.CpuFeaturesLen, "cpu features").ToArray();
        var mask = Slice(meta, h.CpuFeaturesMask, h.CpuFeaturesLen, "cpu features mask").ToArray();

        CheckRegions(regions, files, h);
        if (h.Level is not (ImageFormat.LevelLink or ImageFormat.LevelInit))
            throw new InvalidDataException($"unknown level {h.Level}");
        ulong frameLen = h.Level == ImageFormat.LevelInit ? h.OldStackArgc - h.FrameAddr : 0;
        if (h.Level == ImageFormat.LevelInit && (h.FrameAddr >= h.OldStackArgc || frameLen > ImageFormat.FrameMax))
            throw new InvalidDataException("the frames below main are not below argc");
        CheckPatches(patches, regions, h.Level, h.FrameAddr, h.OldStackArgc);
        var envDeps = Table<uint>(meta, h.EnvDeps, "env_deps").Select(Str).ToList();
        var kernelOps = Table<RsKernelOp>(meta, h.KernelOps, "kernel_ops").Select(FromRaw).ToList();
        if (h.Level == ImageFormat.LevelLink && (kernelOps.Count > 0 || envDeps.Count > 0 || h.FallbackSize != 0))
            throw new InvalidDataException("init-level fields in a link-level image");
        return new ImageInfo(path, h, Str(h.ExePath), files, regions, patches, env, cpu, mask)
            { Prefault = prefault, EnvDeps = envDeps, KernelOps = kernelOps };
    }

    static unsafe KernelOp FromRaw(RsKernelOp k)
    {
        if (k.Kind is < ImageFormat.KopSigaction or > ImageFormat.KopName)
            throw new InvalidDataException($"unknown kernel state kind {k.Kind}");
        return new KernelOp(k.Kind, k.Arg, [k.Value[0], k.Value[1], k.Value[2], k.Value[3]]);
    }

    /// <summary>
    /// The id and program of an image of any format version (fields are only appended, so the
    /// first version's header is a prefix of every later one), with its checksum verified.
    /// InvalidDataException when even that cannot be read.
    /// </summary>
    public static ImageIdentity ReadIdentity(string path)
    {
        using var f = File.OpenHandle(path);
        long length = RandomAccess.GetLength(f);
        var head = new byte[HeaderSize];
        int got = RandomAccess.Read(f, head, 0);
        var h = MemoryMarshal.Read<RsHeader>(head);   // bytes past a shorter header are zero or ignored
        if (got < (int)Marshal.OffsetOf<RsHeader>(nameof(RsHeader.Hwcap)))
            throw new InvalidDataException("not a resident image (bad magic)");
        CheckMagic(h);
        if (h.FileSize != (ulong)length || h.MetaSize > h.FileSize || h.MetaSize % 8 != 0 || h.MetaSize > 1 << 30 || h.MetaSize < (ulong)got)
            throw new InvalidDataException("bad sizes");
        var meta = new byte[h.MetaSize];
        if (RandomAccess.Read(f, meta, 0) != meta.Length)
            throw new InvalidDataException("truncated metadata");
        CheckChecksum(meta, h.Checksum);
        var strings = Slice(meta, h.StringsOffset, h.StringsSize, "string table").ToArray();
        return new ImageIdentity(h.Version, h.Id, StringTable.Get(strings, h.ExePath));
    }

    /// <summary>Magic, version, header size, file size and the bounds of [0, meta_size) and the data.</summary>
    public static RsHeader CheckIdentity(ReadOnlySpan<byte> head, long fileLength)
    {
        var h = MemoryMarshal.Read<RsHeader>(head);
        CheckMagic(h);
        if (h.Version != ImageFormat.Version)
            throw new InvalidDataException($"image format version {h.Version}, this build reads {ImageFormat.Version}");
        if (h.HeaderSize != HeaderSize)
            throw new InvalidDataException($"header size {h.HeaderSize}, expected {HeaderSize}");
        if (h.FileSize != (ulong)fileLength)
            throw new InvalidDataException($"size mismatch: the header says {h.FileSize} bytes, the file has {fileLength} (truncated?)");
        if (h.MetaSize < (ulong)HeaderSize || h.MetaSize % 8 != 0 || h.MetaSize > h.FileSize || h.MetaSize > 1 << 30)
            throw new InvalidDataException($"bad meta_size {h.MetaSize}");
        if (h.DataOffset % ImageFormat.PageSize != 0 || h.DataOffset < h.MetaSize || h.DataOffset > h.FileSize)
            throw new InvalidDataException($"bad data_offset {h.DataOffset}");
        return h;
    }

    static unsafe void CheckMagic(RsHeader h)
    {
        if (!new ReadOnlySpan<byte>(h.Magic, 8).SequenceEqual(System.Text.Encoding.ASCII.GetBytes(ImageFormat.Magic)))
            throw new InvalidDataException("not a resident image (bad magic)");
    }

    /// <summary>rs_checksum of the metadata with its checksum word read as zero (image.h).</summary>
    static void CheckChecksum(byte[] meta, ulong expected)
    {
        var zeroed = (byte[])meta.Clone();
        BitConverter.TryWriteBytes(zeroed.AsSpan((int)Marshal.OffsetOf<RsHeader>(nameof(RsHeader.Checksum)), 8), 0UL);
        if (ImageFormat.Checksum(zeroed) != expected)
            throw new InvalidDataException("checksum mismatch: the image is corrupt");
    }

    static ReadOnlySpan<byte> Slice(byte[] meta, ulong offset, ulong size, string what)
    {
        if (offset > (ulong)meta.Length || size > (ulong)meta.Length - offset)
            throw new InvalidDataException($"{what} [{offset}, +{size}) lies outside the metadata ({meta.Length} bytes)");
        return meta.AsSpan((int)offset, (int)size);
    }

    static T[] Table<T>(byte[] meta, RsTable t, string what) where T : unmanaged
    {
        int size = Marshal.SizeOf<T>();
        if (t.EntrySize != size)
            throw new InvalidDataException($"{what} entry size {t.EntrySize}, expected {size}");
        if (t.Offset % 8 != 0)
            throw new InvalidDataException($"{what} table offset {t.Offset} is not 8-aligned");
        return MemoryMarshal.Cast<byte, T>(Slice(meta, t.Offset, (ulong)t.Count * (ulong)size, what + " table")).ToArray();
    }

    static void CheckRegions(List<Region> regions, List<FileEntry> files, RsHeader h)
    {
        ulong previousEnd = 0;
        foreach (var r in regions)
        {
            string at = $"region 0x{r.Start:x}";
            if (r.Start % ImageFormat.PageSize != 0 || r.End % ImageFormat.PageSize != 0 || r.End <= r.Start)
                throw new InvalidDataException($"{at}: not a page-aligned non-empty range");
            if (r.Start < previousEnd)
                throw new InvalidDataException($"{at}: regions overlap or are not sorted");
            previousEnd = r.End;
            switch (r.Kind)
            {
                case ImageFormat.RegionFile:
                    if (r.File >= files.Count || (files[(int)r.File].Flags & ImageFormat.FileMapped) == 0)
                        throw new InvalidDataException($"{at}: file index {r.File} is not a mapped file");
                    if (r.Offset % ImageFormat.PageSize != 0)
                        throw new InvalidDataException($"{at}: file offset not page-aligned");
                    // A page wholly past the end of its file would raise SIGBUS when touched.
                    if (r.Offset + r.Length > ImageFormat.AlignUp(files[(int)r.File].Size, ImageFormat.PageSize))
                        throw new InvalidDataException($"{at}: maps past the end of {files[(int)r.File].Path}");
                    break;
                case ImageFormat.RegionImage:
                    if (r.Offset % ImageFormat.PageSize != 0 || r.Offset < h.DataOffset || r.Offset + r.Length > h.FileSize)
                        throw new InvalidDataException($"{at}: image offset {r.Offset} outside the data");
                    break;
                case ImageFormat.RegionZero:
                    break;
                default:
                    throw new InvalidDataException($"{at}: unknown kind {r.Kind}");
            }
            if ((r.Prot & MapsEntry.ProtExec) != 0 && r.Kind != ImageFormat.RegionFile)
                throw new InvalidDataException($"{at}: executable but not mapped from a file");
        }
    }

    static void CheckPatches(List<Patch> patches, List<Region> regions, uint level, ulong frameAddr, ulong argc)
    {
        uint last = level == ImageFormat.LevelInit ? ImageFormat.PatchCanary : ImageFormat.PatchAuxvValue;
        foreach (var p in patches)
        {
            if (p.Kind < ImageFormat.PatchArgc || p.Kind > last)
                throw new InvalidDataException($"patch at 0x{p.Addr:x}: unknown kind {p.Kind}");
            if (level == ImageFormat.LevelInit && p.Addr >= frameAddr && p.Addr < argc && p.Addr % 8 == 0)
                continue;   // in the frames below main
            var r = regions.FirstOrDefault(r => r.Contains(p.Addr));
            if (r == null || p.Addr % 8 != 0 || (r.Flags & ImageFormat.RegionFlagPatched) == 0)
                throw new InvalidDataException($"patch at 0x{p.Addr:x} is not an aligned word of a patched region");
        }
    }
}
