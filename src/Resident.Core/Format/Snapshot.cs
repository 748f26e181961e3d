namespace Resident.Format;

/// <summary>A file the image depends on (struct rs_file), with its path resolved.</summary>
/// <remarks>The change time (ctime) is in the stamp because no user can set it: a file rewritten
/// in place with its size and mtime put back (touch -d) still shows a new ctime.</remarks>
public sealed record FileEntry(string Path, uint Flags, ulong Dev, ulong Ino, ulong Size, long MtimeSec, long MtimeNsec,
    long CtimeSec = 0, long CtimeNsec = 0)
{
    public static FileEntry Absent(string path) => new(path, ImageFormat.FileAbsent, 0, 0, 0, 0, 0);
}

/// <summary>
/// One mapping to create at restore (struct rs_region). <see cref="Offset"/>: FILE = offset
/// in files[File]; IMAGE = offset in the image file (assigned by the writer, 0 in a
/// snapshot); ZERO = 0. <see cref="Pages"/> holds an IMAGE region's saved pages in a
/// snapshot, 4096 bytes each in address order (null once read back from an image). Pages,
/// not one array: copying 10 MB into fresh arrays costs a page fault per 4 KiB.
/// </summary>
public sealed record Region(ulong Start, ulong End, uint Kind, uint Prot, uint File, ulong Offset, uint Flags, string Name)
{
    public IReadOnlyList<ReadOnlyMemory<byte>>? Pages { get; init; }

    /// <summary><paramref name="bytes"/> (a multiple of 4096 long) as <see cref="Pages"/>.</summary>
    public static ReadOnlyMemory<byte>[] SplitPages(byte[] bytes) =>
        Enumerable.Range(0, bytes.Length / (int)ImageFormat.PageSize)
            .Select(i => new ReadOnlyMemory<byte>(bytes, i * (int)ImageFormat.PageSize, (int)ImageFormat.PageSize)).ToArray();

    public ulong Length => End - Start;

    public bool Contains(ulong addr) => addr >= Start && addr < End;

    public static string KindName(uint kind) => kind switch
    {
        ImageFormat.RegionFile => "file",
        ImageFormat.RegionImage => "image",
        ImageFormat.RegionZero => "zero",
        _ => $"kind-{kind}",
    };
}

/// <summary>
/// Everything an image holds, built from a stopped process by <see cref="SnapshotBuilder"/>
/// and written by <see cref="ImageWriter"/>. <see cref="Header"/> carries the fixed-size
/// facts (machine, ld.so, resume state, auxv, stack); its identity and layout fields (magic,
/// sizes, offsets, tables, checksum, id, exe_path, cpu_features_len/blob/mask) are the
/// writer's and are ignored here.
/// </summary>
public sealed record Snapshot
{
    public RsHeader Header;

    /// <summary>The program as registered (files[0].Path).</summary>
    public required string ExePath { get; init; }

    public required IReadOnlyList<FileEntry> Files { get; init; }

    /// <summary>Sorted by start, non-overlapping, page-aligned.</summary>
    public required IReadOnlyList<Region> Regions { get; init; }

    public required IReadOnlyList<Patch> Patches { get; init; }

    /// <summary>"NAME=VALUE" entries the restorer requires equal, sorted ordinally.</summary>
    public required IReadOnlyList<string> Env { get; init; }

    /// <summary>The capture's struct cpu_features bytes, and the mask of bytes to compare.</summary>
    public required byte[] CpuFeatures { get; init; }

    public required byte[] CpuFeaturesMask { get; init; }

    /// <summary>Init level: the frames below main, [Header.FrameAddr, Header.OldStackArgc) at capture; empty at the link level.</summary>
    public byte[] Frame { get; init; } = [];

    /// <summary>Init level: the variables the constructors looked up, "NAME=VALUE" as set at capture or "NAME" unset (rs_header.env_deps).</summary>
    public IReadOnlyList<string> EnvDeps { get; init; } = [];

    /// <summary>Init level: the kernel state the constructors set, replayed in order by the takeover (rs_header.kernel_ops).</summary>
    public IReadOnlyList<KernelOp> KernelOps { get; init; } = [];

    /// <summary>
    /// Init level with <see cref="EnvDeps"/>: the link-level snapshot of the same capture, written
    /// into the same file (rs_header.fallback_*), which the hook restores when a looked-up
    /// variable differs; else null.
    /// </summary>
    public Snapshot? Fallback { get; init; }

    /// <summary>Pages of read-only file regions the constructors touched (rs_header.prefault), sorted; empty if not recorded.</summary>
    public IReadOnlyList<RsSpan> Prefault { get; set; } = [];

    /// <summary>This snapshot with <paramref name="more"/> patches, the regions they lie in marked patched.</summary>
    public Snapshot With(IReadOnlyList<Patch> more) => more.Count == 0 ? this : this with
    {
        Regions = Regions.Select(r => more.Any(p => r.Contains(p.Addr)) ? r with { Flags = r.Flags | ImageFormat.RegionFlagPatched } : r).ToList(),
        Patches = [.. Patches, .. more],
    };

    /// <summary>Init level: is <paramref name="addr"/> in the frames below main (the patches there move with them)?</summary>
    public bool InFrame(ulong addr) => Frame.Length > 0 && addr >= Header.FrameAddr && addr < Header.OldStackArgc;

    public long ImageBytes => Regions.Where(r => r.Kind == ImageFormat.RegionImage).Sum(r => (long)r.Length);
}
