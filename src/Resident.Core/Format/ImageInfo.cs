namespace Resident.Format;

/// <summary>What any format version of an image says about itself: enough to capture the program again under its id.</summary>
public sealed record ImageIdentity(uint Version, ulong Id, string ExePath);

/// <summary>An image's metadata as read back by <see cref="ImageReader"/>: the header and every table, strings resolved.</summary>
public sealed record ImageInfo(
    string ImagePath,
    RsHeader Header,
    string ExePath,
    IReadOnlyList<FileEntry> Files,
    IReadOnlyList<Region> Regions,
    IReadOnlyList<Patch> Patches,
    IReadOnlyList<string> Env,
    byte[] CpuFeatures,
    byte[] CpuFeaturesMask)
{
    /// <summary>rs_header.prefault: pages the constructors touched at capture.</summary>
    public IReadOnlyList<RsSpan> Prefault { get; init; } = [];

    /// <summary>Init level: the variables the constructors looked up ("NAME=VALUE" or "NAME" unset).</summary>
    public IReadOnlyList<string> EnvDeps { get; init; } = [];

    /// <summary>Init level: the kernel state the constructors set, replayed by the takeover.</summary>
    public IReadOnlyList<KernelOp> KernelOps { get; init; } = [];

    /// <summary>Init level with <see cref="EnvDeps"/>: the link-level image in the same file, restored when a variable differs; else null.</summary>
    public ImageInfo? Fallback { get; init; }

    public unsafe string Platform { get { var h = Header; return FixedText.Get(h.Platform, 16); } }

    public unsafe string KernelRelease { get { var h = Header; return FixedText.Get(h.KernelRelease, 65); } }

    public unsafe string KernelVersion { get { var h = Header; return FixedText.Get(h.KernelVersion, 65); } }

    public DateTimeOffset CaptureTime => DateTimeOffset.UnixEpoch.AddTicks(Header.CaptureTimeNs / 100);

    public bool LazyBind => (Header.Flags & ImageFormat.HeaderFlagLazyBind) != 0;

    public string LevelName => Header.Level switch { ImageFormat.LevelLink => "link", ImageFormat.LevelInit => "init", var l => $"level-{l}" };

    /// <summary>Bytes of saved pages (the image's own share of memory).</summary>
    public long SavedBytes => Regions.Where(r => r.Kind == ImageFormat.RegionImage).Sum(r => (long)r.Length);
}
