using Resident.Format;
using Resident.Proc;

namespace Resident.HookContract;

/// <summary>
/// Whether an image would still be used, in the hook's words: null, or the first reason it
/// would fall back — "executable changed", "library changed: PATH", "file changed: PATH" (a stamp
/// such as /etc/ld.so.cache), "library missing: PATH", "file missing: PATH", "file appeared: PATH"
/// (probed and absent at capture), "kernel changed", "cpu differs: hwcap" or "cpu differs:
/// platform". The hook: native/files.c check_file and changed_reason, native/restore.c
/// rs_check_live (kernel, hwcap, platform); StalenessRuleTests puts both to the same images.
/// What only the hook can judge (the vdso's bytes, ld.so's cpu_features, this exec's
/// environment, stack limit and layout) is not here: `resident doctor PROG` asks the hook.
/// </summary>
public static class Staleness
{
    public static string? Of(ImageInfo image)
    {
        for (int i = 0; i < image.Files.Count; i++)
            if (OfFile(image.Files[i], i == 0) is string reason)
                return reason;
        var (release, version) = Interop.Uname();
        if (release != image.KernelRelease || version != image.KernelVersion)
            return "kernel changed";
        return OfCpu(image);
    }

    /// <summary>Null when the file is as recorded, else the reason (resident show prints it per file).</summary>
    public static string? OfFile(FileEntry recorded, bool isExe)
    {
        if ((recorded.Flags & ImageFormat.FileAbsent) != 0)
            return FileStamp.Absent(recorded.Path) ? null : $"file appeared: {recorded.Path}";
        string what = isExe ? "executable" : (recorded.Flags & ImageFormat.FileMapped) != 0 ? "library" : "file";
        var now = FileStamp.Of(recorded.Path, recorded.Flags);
        if (now == null)
            return isExe ? "executable missing" : $"{what} missing: {recorded.Path}";
        if (FileStamp.Same(recorded, now))
            return null;
        return isExe ? "executable changed" : $"{what} changed: {recorded.Path}";
    }

    // Every process on this machine gets the same AT_HWCAP/AT_HWCAP2/AT_PLATFORM, so this
    // process's own auxv answers for the next exec of the program.
    static string? OfCpu(ImageInfo image)
    {
        var auxv = Auxv.Read(Environment.ProcessId);
        string platform = auxv.Find(Auxv.AT_PLATFORM) is ulong p && p != 0
            ? System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)p) ?? "" : "";
        if (auxv.Find(Auxv.AT_HWCAP) != image.Header.Hwcap || (auxv.Find(Auxv.AT_HWCAP2) ?? 0) != image.Header.Hwcap2)
            return "cpu differs: hwcap";
        return platform == image.Platform ? null : "cpu differs: platform";
    }
}
