using Resident.Image;

namespace Resident.Registry;

/// <summary>
/// One registry directory of images, named by the executable's st_dev/st_ino
/// (<see cref="RegistryPaths.ImageFileName"/>), plus the id counter "next-id".
/// Ids are handed out from the counter only and never reused, so an id names one registration
/// for as long as the registry exists (DragonFly's counter could hand out duplicates).
/// </summary>
public sealed class ImageRegistry(string directory)
{
    const string CounterFile = "next-id";

    public string Directory { get; } = directory;

    /// <summary>
    /// Creates the directory (0700) if needed and checks it can hold images the hook will trust:
    /// owned by this user or root, not group/other-writable, writable by us. Throws
    /// <see cref="RegistryException"/> with a one-line reason otherwise.
    /// </summary>
    public void EnsureWritable()
    {
        try
        {
            if (!System.IO.Directory.Exists(Directory))
                System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryException($"cannot create registry {Directory}: {e.Message}");
        }
        var mode = File.GetUnixFileMode(Directory);
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            throw new RegistryException($"registry {Directory} is group- or world-writable: the hook would not trust its images (chmod go-w it)");
        string probe = Path.Combine(Directory, $".probe-{Environment.ProcessId}");
        try { File.WriteAllBytes(probe, []); File.Delete(probe); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryException($"registry {Directory} is not writable: {e.Message}");
        }
    }

    public string ImagePath(ulong dev, ulong ino) => Path.Combine(Directory, RegistryPaths.ImageFileName(dev, ino));

    /// <summary>
    /// Hands out the next id under an exclusive lock on the counter file. <paramref name="entries"/>
    /// (the caller's read of <see cref="Entries"/>) keeps ids above every one in use even if the
    /// counter file was lost.
    /// </summary>
    public ulong AllocateId(IReadOnlyList<RegistryEntry> entries)
    {
        ulong maxInUse = entries.Select(e => e.Image?.Header.Id ?? 0).DefaultIfEmpty(0UL).Max();
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
                list.Add(new RegistryEntry(path, null, e.Message));
            }
        }
        list.Sort((a, b) => (a.Image?.Header.Id ?? ulong.MaxValue).CompareTo(b.Image?.Header.Id ?? ulong.MaxValue));
        return list;
    }
}

/// <summary>One image file: its parsed header (null when it cannot be read) or why not.</summary>
public sealed record RegistryEntry(string Path, ImageInfo? Image, string? Error);

public sealed class RegistryException(string message) : Exception(message);
