using Resident.Proc;

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

    public unsafe string Platform { get { var h = Header; return FixedText.Get(h.Platform, 16); } }

    public unsafe string KernelRelease { get { var h = Header; return FixedText.Get(h.KernelRelease, 65); } }

    public unsafe string KernelVersion { get { var h = Header; return FixedText.Get(h.KernelVersion, 65); } }

    public DateTimeOffset CaptureTime => DateTimeOffset.UnixEpoch.AddTicks(Header.CaptureTimeNs / 100);

    public bool LazyBind => (Header.Flags & ImageFormat.HeaderFlagLazyBind) != 0;

    public string LevelName => Header.Level == ImageFormat.LevelLink ? "link" : $"level-{Header.Level}";

    /// <summary>Bytes of saved pages (the image's own share of memory).</summary>
    public long SavedBytes => Regions.Where(r => r.Kind == ImageFormat.RegionImage).Sum(r => (long)r.Length);

    /// <summary>
    /// Null when the image would still be used, else the first reason the hook would fall
    /// back: "executable changed", "library changed: PATH", "changed: PATH" (a stamp such as
    /// /etc/ld.so.cache), "missing: PATH", "appeared: PATH" (probed and absent at capture),
    /// "kernel changed", "cpu changed" (hwcap/platform). The same file and machine checks as
    /// the hook, from this process; the vdso and cpu_features comparisons are the hook's alone.
    /// </summary>
    public string? Staleness()
    {
        for (int i = 0; i < Files.Count; i++)
            if (FileStaleness(Files[i], i == 0) is string reason)
                return reason;
        var (release, version) = Interop.Uname();
        if (release != KernelRelease || version != KernelVersion)
            return "kernel changed";
        return CpuStaleness();
    }

    // Every process on this machine gets the same AT_HWCAP/AT_HWCAP2/AT_PLATFORM, so this
    // process's own auxv answers for the next exec of the program.
    unsafe string? CpuStaleness()
    {
        var auxv = Auxv.Read(Environment.ProcessId);
        string platform = auxv.Find(Auxv.AT_PLATFORM) is ulong p && p != 0
            ? System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)p) ?? "" : "";
        bool same = auxv.Find(Auxv.AT_HWCAP) == Header.Hwcap && (auxv.Find(Auxv.AT_HWCAP2) ?? 0) == Header.Hwcap2
            && platform == Platform;
        return same ? null : "cpu changed";
    }

    // As the hook decides: only ENOENT/ENOTDIR prove absence (EACCES could hide a library).
    static bool IsAbsent(string path)
    {
        if (Interop.Stat(path, out _) == 0)
            return false;
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        return errno is Interop.ENOENT or Interop.ENOTDIR;
    }

    /// <summary>Null when the file is as recorded (what the hook checks), else the reason; public for resident show.</summary>
    public static string? FileStaleness(FileEntry recorded, bool isExe)
    {
        if ((recorded.Flags & ImageFormat.FileAbsent) != 0)
            return IsAbsent(recorded.Path) ? null : $"appeared: {recorded.Path}";
        var now = FileEntry.Stat(recorded.Path, recorded.Flags);
        if (now == null)
            return isExe ? "executable missing" : $"missing: {recorded.Path}";
        if (recorded.SameStat(now))
            return null;
        if (isExe)
            return "executable changed";
        return (recorded.Flags & ImageFormat.FileMapped) != 0 ? $"library changed: {recorded.Path}" : $"changed: {recorded.Path}";
    }
}
