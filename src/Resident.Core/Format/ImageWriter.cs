using System.Runtime.InteropServices;
using Resident.Proc;

namespace Resident.Format;

/// <summary>
/// Writes a <see cref="Snapshot"/> as an image file (docs/image-format.md) atomically: into a
/// fresh temporary file next to the target, fsynced, renamed over the target, directory
/// fsynced. A reader (the hook) sees the old image or the new one, never a partial one.
/// </summary>
public static partial class ImageWriter
{
    const ulong Page = ImageFormat.PageSize;

    /// <summary>
    /// Writes <paramref name="s"/> to <paramref name="path"/> with registry id <paramref name="id"/>
    /// and returns the file size. On any failure the temporary file is removed, an existing
    /// image at <paramref name="path"/> is untouched, and a RefusalException says why in one line.
    /// </summary>
    public static long Write(Snapshot s, string path, ulong id)
    {
        if (s.Fallback is { Fallback: not null })
            throw new ArgumentException("a fallback image carries no fallback of its own");
        var fallback = s.Fallback is { } fb ? Layout(fb, id) : default;
        ulong fallbackSize = fallback.Meta is null ? 0 : MemoryMarshal.Read<RsHeader>(fallback.Meta).FileSize;
        var (meta, regions) = Layout(s, id, fallbackSize);
        var h = MemoryMarshal.Read<RsHeader>(meta);
        RemoveAbandonedTemporaries(Path.GetDirectoryName(Path.GetFullPath(path))!);
        long size = 0;
        ReplaceAtomically(path, "write image", temp =>
        {
            using var f = Create(temp, h.FileSize);
            WriteImage(f, 0, meta, s.Regions, regions);
            if (fallback.Meta is not null)
                WriteImage(f, (long)h.FallbackOffset, fallback.Meta, s.Fallback!.Regions, fallback.Regions);
            f.Flush(flushToDisk: true);
            size = f.Length;
        });
        return size;
    }

    /// <summary>
    /// Has <paramref name="writeTemporary"/> write the new file next to <paramref name="path"/>
    /// (a name <see cref="RemoveAbandonedTemporaries"/> recognises), renames it over the path
    /// and fsyncs the directory; on any failure the temporary is removed and the old file is
    /// as it was. An I/O failure is a RefusalException "cannot WHAT: REASON".
    /// </summary>
    static void ReplaceAtomically(string path, string what, Action<string> writeTemporary)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            writeTemporary(temp);
            File.Move(temp, path, overwrite: true);
            Interop.FsyncDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new RefusalException($"cannot {what}: {OneLine(e)}");
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Rewrites the stamps of the image at <paramref name="path"/>: every files[] entry gets the
    /// identity and times of <paramref name="files"/> (the same paths and flags, in the table's order), the
    /// checksum is sealed again; the rest of the image is copied as it is. Atomic as
    /// <see cref="Write"/>: into a temporary copy, fsynced, renamed over the image.
    /// </summary>
    public static void Restamp(string path, IReadOnlyList<FileEntry> files) => RewriteMeta(path, meta =>
    {
        var h = MemoryMarshal.Read<RsHeader>(meta);
        var table = MemoryMarshal.Cast<byte, RsFile>(meta.Slice((int)h.Files.Offset, (int)(h.Files.Count * h.Files.EntrySize)));
        if (table.Length != files.Count || h.Files.EntrySize != Marshal.SizeOf<RsFile>())
            throw new RefusalException("cannot restamp an image whose file table differs");
        for (int i = 0; i < table.Length; i++)
        {
            var e = files[i];
            if (table[i].Flags != e.Flags)
                throw new RefusalException($"cannot restamp: {e.Path} is another kind of dependency now");
            (table[i].Dev, table[i].Ino, table[i].Size) = (e.Dev, e.Ino, e.Size);
            (table[i].MtimeSec, table[i].MtimeNsec, table[i].CtimeSec, table[i].CtimeNsec) = (e.MtimeSec, e.MtimeNsec, e.CtimeSec, e.CtimeNsec);
        }
    });

    /// <summary>Makes the image at <paramref name="path"/> variant <paramref name="index"/> of <paramref name="count"/> (rs_header.variant_*), atomically.</summary>
    public static void SetVariant(string path, uint count, uint index) => RewriteMeta(path, meta =>
    {
        var h = MemoryMarshal.Read<RsHeader>(meta);
        h.VariantCount = count;
        h.VariantIndex = index;
        MemoryMarshal.Write(meta, in h);
    });

    /// <summary>Records what `resident add` measured (rs_header.measured_*_ns) in the image at <paramref name="path"/>, atomically.</summary>
    public static void SetMeasurement(string path, ulong normalNs, ulong residentNs) => RewriteMeta(path, meta =>
    {
        var h = MemoryMarshal.Read<RsHeader>(meta);
        h.MeasuredNormalNs = normalNs;
        h.MeasuredResidentNs = residentNs;
        MemoryMarshal.Write(meta, in h);
    });

    /// <summary>
    /// Edits the checksummed metadata of the image at <paramref name="path"/> with
    /// <paramref name="edit"/> and seals it again; the saved pages are copied as they are. Atomic
    /// as <see cref="Write"/>: into a temporary copy, fsynced, renamed over the image.
    /// </summary>
    static void RewriteMeta(string path, SpanAction edit) => ReplaceAtomically(path, "rewrite image", temp =>
    {
        File.Copy(path, temp);
        using var f = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite);
        var h = ReadHeader(f);
        var meta = new byte[h.MetaSize];
        f.ReadExactly(meta);
        edit(meta);
        BitConverter.TryWriteBytes(meta.AsSpan(32, 8), 0UL);
        BitConverter.TryWriteBytes(meta.AsSpan(32, 8), ImageFormat.Checksum(meta));
        f.Position = 0;
        f.Write(meta);
        f.Flush(flushToDisk: true);
    });

    delegate void SpanAction(Span<byte> meta);

    static RsHeader ReadHeader(FileStream f)
    {
        var bytes = new byte[Marshal.SizeOf<RsHeader>()];
        f.ReadExactly(bytes);
        f.Position = 0;
        return MemoryMarshal.Read<RsHeader>(bytes);
    }

    /// <summary>
    /// Temporary files of writers that were killed half-way (their pid is gone): never an image,
    /// but megabytes each. A live writer's file, or a name of another shape, is left alone.
    /// </summary>
    static void RemoveAbandonedTemporaries(string dir)
    {
        IEnumerable<string> names;
        try
        {
            names = Directory.EnumerateFiles(dir, ".*.tmp").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var file in names)
        {
            var m = TemporaryName().Match(Path.GetFileName(file));
            if (m.Success && int.TryParse(m.Groups[1].ValueSpan, out int pid) && !ProcFs.Exists(pid))
                TryDelete(file);
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\..+\.img\.(\d+)\.[0-9a-f]{32}\.tmp$")]
    private static partial System.Text.RegularExpressions.Regex TemporaryName();

    /// <summary>
    /// The checksummed metadata block [0, meta_size) and the regions with their final image
    /// offsets. Exposed for tests; <see cref="Write"/> is the way to produce a file.
    /// </summary>
    /// <param name="fallbackSize">the size of the link-level image written after this one (rs_header.fallback_*), 0 for none.</param>
    public static (byte[] Meta, RsRegion[] Regions) Layout(Snapshot s, ulong id, ulong fallbackSize = 0)
    {
        var strings = new StringTable();
        var h = s.Header;
        h.Id = id;
        h.ExePath = strings.Add(s.ExePath);
        var files = s.Files.Select(f => ToRaw(f, strings)).ToArray();
        var patches = s.Patches.Select(p => ToRaw(p, strings)).ToArray();
        var env = s.Env.Select(strings.Add).ToArray();
        var envDeps = s.EnvDeps.Select(strings.Add).ToArray();
        var kernelOps = s.KernelOps.Select(ToRaw).ToArray();
        if (kernelOps.Length > ImageFormat.KernelOpsMax)
            throw new RefusalException($"the constructors set kernel state {kernelOps.Length} times, an image holds {ImageFormat.KernelOpsMax}");
        var regions = s.Regions.Select(r => ToRaw(r, strings)).ToArray();
        byte[] stringBytes = strings.ToArray();
        if (s.CpuFeatures.Length != s.CpuFeaturesMask.Length)
            throw new ArgumentException("cpu features blob and mask differ in length");

        var meta = new MetaBuilder();
        meta.Reserve(Marshal.SizeOf<RsHeader>());
        h.Files = meta.Table(files);
        h.Regions = meta.Table(regions);   // offsets patched below, rewritten at the end
        long regionsAt = (long)h.Regions.Offset;
        h.Patches = meta.Table(patches);
        h.Env = meta.Table(env);
        h.Prefault = meta.Table(s.Prefault.ToArray());
        h.EnvDeps = meta.Table(envDeps);
        h.KernelOps = meta.Table(kernelOps);
        if (s.Frame.Length > 0)
        {
            if (s.Frame.Length % 8 != 0 || s.Frame.Length > ImageFormat.FrameMax || h.OldStackArgc - h.FrameAddr != (ulong)s.Frame.Length)
                throw new ArgumentException("the frames below main do not end at argc");
            h.FrameBlob = meta.Append(s.Frame);
        }
        h.StringsOffset = meta.Append(stringBytes);
        h.StringsSize = (ulong)stringBytes.Length;
        h.CpuFeaturesLen = (ulong)s.CpuFeatures.Length;
        h.CpuFeaturesBlob = meta.Append(s.CpuFeatures);
        h.CpuFeaturesMask = meta.Append(s.CpuFeaturesMask);

        h.MetaSize = (ulong)meta.Length;
        h.DataOffset = ImageFormat.AlignUp(h.MetaSize, Page);
        ulong at = h.DataOffset;
        for (int i = 0; i < regions.Length; i++)
            if (regions[i].Kind == ImageFormat.RegionImage)
            {
                regions[i].Offset = at;
                at += regions[i].End - regions[i].Start;
            }
        h.FileSize = at;
        (h.FallbackOffset, h.FallbackSize) = (0, 0);
        if (fallbackSize > 0)
        {
            h.FallbackOffset = ImageFormat.AlignUp(at, Page);
            h.FallbackSize = fallbackSize;
            h.FileSize = h.FallbackOffset + fallbackSize;
        }
        SetIdentity(ref h);
        meta.Overwrite(regionsAt, MemoryMarshal.AsBytes(regions.AsSpan()));
        meta.Overwrite(0, MemoryMarshal.AsBytes(new Span<RsHeader>(ref h)));
        byte[] bytes = meta.ToArray();
        h.Checksum = ImageFormat.Checksum(bytes);
        MemoryMarshal.Write(bytes, in h);
        return (bytes, regions);
    }

    static unsafe void SetIdentity(ref RsHeader h)
    {
        fixed (byte* magic = h.Magic)
            System.Text.Encoding.ASCII.GetBytes(ImageFormat.Magic, new Span<byte>(magic, 8));
        h.Version = ImageFormat.Version;
        h.HeaderSize = (uint)sizeof(RsHeader);
        h.Checksum = 0;
    }

    static RsFile ToRaw(FileEntry f, StringTable strings) => new()
    {
        Path = strings.Add(f.Path), Flags = f.Flags, Dev = f.Dev, Ino = f.Ino, Size = f.Size,
        MtimeSec = f.MtimeSec, MtimeNsec = f.MtimeNsec, CtimeSec = f.CtimeSec, CtimeNsec = f.CtimeNsec,
    };

    static RsPatch ToRaw(Patch p, StringTable strings) => new()
    {
        Addr = p.Addr, Kind = p.Kind, Delta = p.Delta,
        Index = p.Kind == ImageFormat.PatchEnvString
            ? strings.Add(p.EnvName ?? throw new ArgumentException($"env-string patch at 0x{p.Addr:x} has no name"))
            : p.Index,
    };

    static RsRegion ToRaw(Region r, StringTable strings)
    {
        if (r.Kind == ImageFormat.RegionImage && (r.Pages == null || (ulong)r.Pages.Count * Page != r.Length
                                                   || r.Pages.Any(p => p.Length != (int)Page)))
            throw new ArgumentException($"image region at 0x{r.Start:x} does not hold {r.Length / Page} whole pages");
        return new RsRegion
        {
            Start = r.Start, End = r.End, Prot = r.Prot, Kind = r.Kind, File = r.File, Flags = r.Flags,
            Offset = r.Kind == ImageFormat.RegionFile ? r.Offset : 0, Name = strings.Add(r.Name),
        };
    }

    static unsafe RsKernelOp ToRaw(KernelOp k)
    {
        var raw = new RsKernelOp { Kind = k.Kind, Arg = k.Arg };
        for (int i = 0; i < 4; i++)
            raw.Value[i] = k.Value[i];
        return raw;
    }

    static FileStream Create(string temp, ulong fileSize)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew, // O_EXCL: never write through a planted file or symlink
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
        };
        var f = new FileStream(temp, options);
        f.SetLength((long)fileSize); // the gaps after the metadata read as zeros
        return f;
    }

    /// <summary>One image's metadata and saved pages, its offsets counted from <paramref name="at"/> in the file.</summary>
    static void WriteImage(FileStream f, long at, byte[] meta, IReadOnlyList<Region> source, RsRegion[] regions)
    {
        f.Position = at;
        f.Write(meta);
        for (int i = 0; i < regions.Length; i++)
        {
            if (regions[i].Kind != ImageFormat.RegionImage)
                continue;
            f.Position = at + (long)regions[i].Offset;
            foreach (var page in source[i].Pages!)
                f.Write(page.Span);
        }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>"No space left on device" rather than .NET's "... : '/path/.x.tmp'" message.</summary>
    static string OneLine(Exception e)
    {
        string m = e.Message.Split('\n')[0].Trim();
        int quote = m.IndexOf(" : '", StringComparison.Ordinal);
        return quote > 0 ? m[..quote] : m;
    }

    /// <summary>Appends 8-aligned pieces of the metadata block.</summary>
    sealed class MetaBuilder
    {
        readonly MemoryStream _m = new();

        public long Length => _m.Length;

        public void Reserve(int bytes) { _m.SetLength(bytes); _m.Position = bytes; Align(); }

        public ulong Append(ReadOnlySpan<byte> bytes)
        {
            ulong at = (ulong)_m.Position;
            _m.Write(bytes);
            Align();
            return at;
        }

        public RsTable Table<T>(T[] entries) where T : unmanaged => new()
        {
            Offset = Append(MemoryMarshal.AsBytes(entries.AsSpan())),
            Count = (uint)entries.Length,
            EntrySize = (uint)Marshal.SizeOf<T>(),
        };

        public void Overwrite(long at, ReadOnlySpan<byte> bytes)
        {
            long end = _m.Position;
            _m.Position = at;
            _m.Write(bytes);
            _m.Position = end;
        }

        public byte[] ToArray() => _m.ToArray();

        void Align()
        {
            while (_m.Position % 8 != 0) _m.WriteByte(0);
        }
    }
}
