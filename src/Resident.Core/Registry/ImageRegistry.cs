using Resident.Format;
using Resident.HookContract;
using Resident.Proc;

namespace Resident.Registry;

/// <summary>
/// One registry directory of images, named by the executable's st_dev/st_ino
/// (<see cref="RegistryPaths.ImageFileName"/>), plus the id counter "next-id".
/// Ids are handed out from the counter only and never reused, so an id names one registration
/// for as long as the registry exists (DragonFly's counter could hand out duplicates).
/// A system registry (<paramref name="system"/>, resident --system) is written by root only and
/// read by every user's hook: directory 0755, images 0644, both owned by root.
/// </summary>
public sealed class ImageRegistry(string directory, bool system = false)
{
    const string CounterFile = "next-id";
    const UnixFileMode UserDirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    const UnixFileMode SystemDirMode = UserDirMode | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
    const UnixFileMode SystemImageMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public string Directory { get; } = directory;

    public bool IsSystem { get; } = system;

    /// <summary>
    /// Creates the directory (0700; a system registry 0755) if needed and checks it can hold
    /// images the hook will trust: owned by this user or root, not group/other-writable, writable
    /// by us. Throws <see cref="RegistryException"/> with a one-line reason otherwise.
    /// </summary>
    public void EnsureWritable()
    {
        if (IsSystem && Interop.GetEuid() != 0)
            throw new RegistryException($"the system registry {Directory} is written by root only (run resident --system as root)");
        try
        {
            if (!System.IO.Directory.Exists(Directory))
            {
                System.IO.Directory.CreateDirectory(Directory, IsSystem ? SystemDirMode : UserDirMode);
                if (IsSystem)   // every user's hook must reach it, whatever root's umask
                    File.SetUnixFileMode(Directory, SystemDirMode);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryException($"cannot create registry {Directory}: {e.Message}");
        }
        if (TrustProblem() is { } problem)
            throw new RegistryException(problem);
        string probe = Path.Combine(Directory, $".probe-{Environment.ProcessId}");
        try { File.WriteAllBytes(probe, []); File.Delete(probe); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryException($"registry {Directory} is not writable: {e.Message}");
        }
    }

    /// <summary>Null when this user's hook would trust the directory (<see cref="HookTrust"/>), else why not.</summary>
    public string? TrustProblem()
    {
        if (!System.IO.Directory.Exists(Directory))
            return $"registry {Directory} does not exist or is not a directory";
        return HookTrust.Problem(Directory, HookTrust.Kind.Directory) is { } problem ? $"registry {problem}: the hook would not trust its images" : null;
    }

    public string ImagePath(ulong dev, ulong ino) => Path.Combine(Directory, RegistryPaths.ImageFileName(dev, ino));

    /// <summary>
    /// The image path and id a capture of <paramref name="programPath"/> goes to: the file named
    /// by its dev/ino; the id of its existing registration (ids name registrations, not captures),
    /// else <paramref name="keepId"/> (a refresh of a replaced executable), else the id of the
    /// path's registration from before it was replaced, else a new id.
    /// </summary>
    public (string ImagePath, ulong Id) Destination(string programPath, ulong dev, ulong ino, ulong? keepId = null)
    {
        string imagePath = ImagePath(dev, ino);
        var entries = Entries();
        ulong id = entries.FirstOrDefault(e => e.Path == imagePath)?.Id ?? keepId
            ?? entries.FirstOrDefault(e => e.ExePath == programPath)?.Id ?? AllocateId(entries);
        return (imagePath, id);
    }

    /// <summary>
    /// After a capture of <paramref name="exePath"/> wrote <paramref name="imagePath"/>: a system
    /// image must be readable by every user whatever root's umask was (the writer creates it
    /// 0644 minus the umask); the path link (<see cref="RegistryPaths.PathLinkName"/>) is made,
    /// replacing any, atomically; and other images of the same path (the file it was before
    /// it was replaced) are dropped: one path, one registration.
    /// </summary>
    public void Publish(string imagePath, string exePath)
    {
        if (IsSystem)
            File.SetUnixFileMode(imagePath, SystemImageMode);
        var (name, target) = RegistryPaths.PathLink(exePath, imagePath);
        string link = Path.Combine(Directory, name);
        string temp = $"{link}.{Environment.ProcessId}.tmp";
        File.Delete(temp);
        File.CreateSymbolicLink(temp, target);
        File.Move(temp, link, overwrite: true);
        foreach (var e in Entries())
            if (e.ExePath == exePath && e.Path != imagePath)
            {
                File.Delete(e.Path);
                DropVariants(e.Path, from: 1);
            }
    }

    /// <summary>Deletes the variant files of <paramref name="imagePath"/> numbered <paramref name="from"/> and up.</summary>
    public static void DropVariants(string imagePath, uint from)
    {
        foreach (var (path, index) in RegistryPaths.VariantFiles(imagePath).ToList())
            if (index >= from)
                File.Delete(path);
    }

    /// <summary>Deletes an image with its variants, and its path link unless another image of the same path remains.</summary>
    public void Forget(RegistryEntry entry)
    {
        File.Delete(entry.Path);
        DropVariants(entry.Path, from: 1);
        if (entry.ExePath is { } exe && !Entries().Any(e => e.ExePath == exe))
            File.Delete(Path.Combine(Directory, RegistryPaths.PathLink(exe, entry.Path).Name));
    }

    /// <summary>
    /// The registration of <paramref name="program"/>: by its current dev/ino, else (replaced or
    /// gone) by the registered path. Null when it is not registered.
    /// </summary>
    public RegistryEntry? Find(IReadOnlyList<RegistryEntry> entries, string program)
    {
        try
        {
            var file = ProgramFile.Identify(program);
            string path = ImagePath(file.Dev, file.Ino);
            return entries.FirstOrDefault(e => e.Path == path) ?? entries.FirstOrDefault(e => e.ExePath == file.Path);
        }
        catch (RefusalException)
        {
            string full = program.Contains('/') ? Path.GetFullPath(program) : program;
            return entries.FirstOrDefault(e => e.ExePath == full);
        }
    }

    /// <summary>
    /// Hands out the next id under an exclusive lock on the counter file. <paramref name="entries"/>
    /// (the caller's read of <see cref="Entries"/>) keeps ids above every one in use even if the
    /// counter file was lost.
    /// </summary>
    public ulong AllocateId(IReadOnlyList<RegistryEntry> entries)
    {
        ulong maxInUse = entries.Select(e => e.Id ?? 0).DefaultIfEmpty(0UL).Max();
        string path = Path.Combine(Directory, CounterFile);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                using var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                using var reader = new StreamReader(fs, leaveOpen: true);
                ulong next = ulong.TryParse(reader.ReadToEnd().Trim(), out var n) && n > 0 ? n : 1;
                next = Math.Max(next, maxInUse + 1);
                fs.SetLength(0);
                using var writer = new StreamWriter(fs);
                writer.Write($"{next + 1}\n");
                writer.Flush();
                fs.Flush(flushToDisk: true);
                return next;
            }
            catch (IOException) when (attempt < 200)
            {
                Thread.Sleep(10); // another resident holds the lock
            }
        }
    }

    static ImageIdentity? OtherVersion(string path)
    {
        try { return ImageReader.ReadIdentity(path) is { } id && id.Version != ImageFormat.Version ? id : null; }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Every *.img in the registry, read and checked; unreadable ones come with their error.</summary>
    public IReadOnlyList<RegistryEntry> Entries()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var list = new List<RegistryEntry>();
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, "*.img"))
        {
            try { list.Add(new RegistryEntry(path, ImageReader.Read(path), null)); }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                list.Add(new RegistryEntry(path, null, e.Message, OtherVersion(path)));
            }
        }
        list.Sort((a, b) => (a.Id ?? ulong.MaxValue).CompareTo(b.Id ?? ulong.MaxValue));
        return list;
    }
}

/// <summary>
/// One image file: its parsed header (null when it cannot be read) or why not. An image of
/// another format version (written by another resident) cannot be read, but its identity can:
/// <see cref="Old"/>, so that it keeps its id and refresh can capture it again.
/// </summary>
public sealed record RegistryEntry(string Path, ImageInfo? Image, string? Error, ImageIdentity? Old = null)
{
    public ulong? Id => Image?.Header.Id ?? Old?.Id;

    public string? ExePath => Image?.ExePath ?? Old?.ExePath;

    /// <summary>
    /// Null when the hook would use the image, else why not: <see cref="HookContract.Staleness.Of"/>,
    /// or the other format version, or (for a corrupt image) its error.
    /// </summary>
    public string? Staleness() =>
        Image is { } img ? HookContract.Staleness.Of(img)
        : Old is { } old ? $"image format version {old.Version}, this resident writes {ImageFormat.Version}"
        : Error;
}

public sealed class RegistryException(string message) : Exception(message);
