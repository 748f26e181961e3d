using System.Diagnostics;
using Resident.Capture;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;
using Resident.Trace;

namespace Resident.Export;

/// <summary>What an export did, for the one line the CLI prints.</summary>
public sealed record ExportSummary(string ProgramPath, string OutputPath, long Size, TimeSpan Elapsed, uint Level, int Segments)
{
    /// <summary>Why the init level was asked for and refused (the link level was exported instead); else null.</summary>
    public string? InitRefused { get; init; }
}

/// <summary>
/// `resident export`: one static ELF executable that holds a program's whole snapshot, the
/// libraries' pages included, and starts without ld.so or any library file (docs/export.md).
/// <list type="number">
/// <item>Capture the program as `add` does, into a temporary image, in the legacy layout
///   (<see cref="CaptureOptions.CompatLayout"/>): libraries from a third of the address space
///   up, the executable at two thirds, far from where any exec's stack, vdso and mmap area go.</item>
/// <item>Write one PT_LOAD per mapped region at its address: a library's or the executable's
///   pages copied from the file, the image's saved pages from the image. Zero regions stay out:
///   the takeover maps them.</item>
/// <item>Add the stub's segments and the image's metadata, the stub's descriptor filled in,
///   below the snapshot; the entry is the stub's.</item>
/// </list>
/// The file is written next to the destination and renamed over it once complete; the libraries
/// are checked unchanged after they were copied.
/// </summary>
public static class Exporter
{
    /// <summary>The kernel reads at most 64 KiB of program headers (56 bytes each).</summary>
    const int MaxSegments = 1100;

    public static ExportSummary Export(string program, string outputPath, bool init, string stubPath,
        IReadOnlyDictionary<string, string> environment)
    {
        var started = Stopwatch.StartNew();
        var stub = StubFile.Read(stubPath);
        var file = ProgramFile.Resolve(program);
        string output = Path.GetFullPath(outputPath);
        if (Directory.Exists(output))
            throw new RefusalException($"{outputPath} is a directory: name the file to write");
        if (output == file.Path)
            throw new RefusalException("the output would replace the program itself");
        string work = Directory.CreateTempSubdirectory("resident-export-").FullName;
        try
        {
            string imagePath = Path.Combine(work, "image");
            var summary = Capturer.Capture(file, (_, _, _) => (imagePath, 0), environment,
                new CaptureOptions(Init: init, CompatLayout: true));
            var image = ImageReader.Read(imagePath);
            if (image.EnvDeps.Count > 0)
                throw new RefusalException("at the init level its constructors look up " + string.Join(", ", image.EnvDeps.Select(Name))
                    + ": an exported file has no link level to fall back on when one differs; export it at the link level");
            var segments = Segments(image, imagePath, stub, out int snapshotSegments);
            string temp = Path.Combine(Path.GetDirectoryName(output)!, $".{Path.GetFileName(output)}.{Environment.ProcessId}.tmp");
            try
            {
                ElfExecutableWriter.Write(temp, segments, stub.Entry);
                File.SetUnixFileMode(temp, (UnixFileMode)0b111_101_101);
                // the pages copied are the captured ones only if no library changed meanwhile
                for (int i = 0; i < image.Files.Count; i++)
                    if ((image.Files[i].Flags & ImageFormat.FileMapped) != 0 && Staleness.OfFile(image.Files[i], i == 0) is string changed)
                        throw new RefusalException($"{changed} during the export; export it again");
                File.Move(temp, output, overwrite: true);
            }
            finally { File.Delete(temp); }
            return new ExportSummary(summary.ProgramPath, output, new FileInfo(output).Length, started.Elapsed, image.Header.Level,
                snapshotSegments)
            { InitRefused = summary.InitRefused };
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    static string Name(string dep) => dep.Split('=')[0];

    /// <summary>The snapshot's file-backed and saved regions, then the stub's segments and the metadata below them.</summary>
    internal static List<ExportSegment> Segments(ImageInfo image, string imagePath, StubFile stub, out int snapshotSegments)
    {
        var segments = new List<ExportSegment>();
        foreach (var r in image.Regions.Where(r => r.Kind != ImageFormat.RegionZero))
        {
            // patched regions are mapped writable: the takeover writes the patches, then sets the capture's protection
            uint prot = r.Prot | ((r.Flags & ImageFormat.RegionFlagPatched) != 0 ? 2u : 0);
            SegmentSource source = r.Kind == ImageFormat.RegionFile
                ? new FileSlice(image.Files[(int)r.File].Path, (long)r.Offset)
                : new FileSlice(imagePath, (long)r.Offset);
            segments.Add(new ExportSegment(r.Start, r.End - r.Start, prot, source));
        }
        snapshotSegments = segments.Count;
        ulong metaStart = (stub.End + ImageFormat.PageSize - 1) & ~(ImageFormat.PageSize - 1);
        ulong metaSize = image.Header.MetaSize;
        ulong selfEnd = (metaStart + metaSize + ImageFormat.PageSize - 1) & ~(ImageFormat.PageSize - 1);
        CheckClear(image, stub.Start, selfEnd);
        byte[] meta = new byte[selfEnd - metaStart];
        using (var f = File.OpenHandle(imagePath))
            if (RandomAccess.Read(f, meta.AsSpan(0, (int)metaSize), 0) != (int)metaSize)
                throw new RefusalException("the captured image is truncated");
        ulong highest = Math.Max(segments.Count > 0 ? segments.Max(s => s.VirtualAddress + s.Size) : 0, selfEnd);
        var words = stub.CpuWords();
        foreach (var s in stub.Segments)
        {
            byte[] bytes = (byte[])s.Bytes.Clone();
            if (ReferenceEquals(s, stub.Descriptor.Segment))
                ExportDescriptor.Write(bytes.AsSpan(stub.Descriptor.Offset),
                    new ExportDescriptor.Fill(metaStart, metaSize, image.Header.FileSize, stub.Start, selfEnd, highest, words));
            segments.Add(new ExportSegment(s.Start, (ulong)bytes.Length, s.Prot, new ByteContent(bytes)));
        }
        segments.Add(new ExportSegment(metaStart, (ulong)meta.Length, 1, new ByteContent(meta)));
        if (segments.Count > MaxSegments)
            throw new RefusalException($"its snapshot has {segments.Count} regions, more than an executable's {MaxSegments} segments");
        segments.Sort((a, b) => a.VirtualAddress.CompareTo(b.VirtualAddress));
        return segments;
    }

    /// <summary>The stub and metadata [start, end) must lie apart from the snapshot, its vvar..vdso block and its heap.</summary>
    static void CheckClear(ImageInfo image, ulong start, ulong end)
    {
        var h = image.Header;
        var taken = image.Regions.Select(r => (r.Start, r.End)).ToList();
        for (int i = 0; i < ImageFormat.MaxVdsoVmas; i++)
            if (h.VdsoVmas[i].Kind != 0)
                taken.Add((h.VdsoVmas[i].Start, h.VdsoVmas[i].End));
        if (h.MmBrk != 0)
            taken.Add((h.MmStartBrk, h.MmBrk + (1UL << 30)));
        foreach (var (s, e) in taken)
            if (s < end && start < e)
                throw new RefusalException($"its snapshot lies at 0x{s:x}, where the export's stub goes (0x{start:x}-0x{end:x})");
    }
}
