using System.Diagnostics;
using System.Globalization;
using Resident.Elf;
using Resident.Format;

namespace Resident.Export;

/// <summary>
/// The export stub (native/export.c, built as dist/resident-stub): a static executable linked at a
/// fixed address, whose segments an exported file carries as they are, the descriptor in its data
/// filled in. Run by itself it prints its CPU words on this machine.
/// </summary>
public sealed class StubFile
{
    /// <summary>One of its PT_LOADs, widened to whole pages (the bytes around it in those pages are the file's; zeros past its end).</summary>
    public sealed record Segment(ulong Start, byte[] Bytes, uint Prot);

    public string Path { get; }
    public ulong Entry { get; }
    public IReadOnlyList<Segment> Segments { get; }

    /// <summary>The segment holding the descriptor and where in its bytes.</summary>
    public (Segment Segment, int Offset) Descriptor { get; }

    StubFile(string path, ulong entry, IReadOnlyList<Segment> segments, (Segment, int) descriptor)
    {
        Path = path; Entry = entry; Segments = segments; Descriptor = descriptor;
    }

    public ulong Start => Segments[0].Start;
    public ulong End => Segments[^1].Start + (ulong)Segments[^1].Bytes.Length;

    public static StubFile Read(string path)
    {
        if (!File.Exists(path))
            throw new RefusalException($"the export stub {path} is missing (build it: make -C native)");
        var elf = ElfFile.Read(path);
        if (elf.Type != ElfFile.EtExec || elf.Machine != ElfFile.EmX86_64)
            throw new RefusalException($"{path} is not the x86-64 export stub");
        byte[] file = File.ReadAllBytes(path);
        var segments = new List<Segment>();
        foreach (var ph in elf.ProgramHeaders.Where(p => p.Type == ElfFile.PtLoad).OrderBy(p => p.VAddr))
        {
            ulong start = ph.VAddr & ~(ImageFormat.PageSize - 1), lead = ph.VAddr - start;
            ulong end = (ph.VAddr + ph.MemSize + ImageFormat.PageSize - 1) & ~(ImageFormat.PageSize - 1);
            var bytes = new byte[end - start];
            // the page's bytes before the segment come from the file too (as the kernel maps them); bss stays zero
            long from = (long)(ph.Offset - lead);
            int count = (int)Math.Min(lead + ph.FileSize, (ulong)(file.Length - from));
            file.AsSpan((int)from, count).CopyTo(bytes);
            uint prot = ((ph.Flags & 4) != 0 ? 1u : 0) | ((ph.Flags & 2) != 0 ? 2u : 0) | ((ph.Flags & 1) != 0 ? 4u : 0);
            segments.Add(new Segment(start, bytes, prot));
        }
        for (int i = 1; i < segments.Count; i++)
            if (segments[i].Start < segments[i - 1].Start + (ulong)segments[i - 1].Bytes.Length)
                throw new RefusalException($"{path}: segments share a page (link it with page-aligned segments)");
        var holder = segments.FirstOrDefault(s => s.Bytes.AsSpan().IndexOf("RSEXPORT"u8) >= 0)
            ?? throw new RefusalException($"{path} has no export descriptor");
        return new StubFile(path, elf.Entry, segments, (holder, ExportDescriptor.Find(holder.Bytes)));
    }

    /// <summary>Runs the stub by itself: its CPU words on this machine, in its descriptor's order.</summary>
    public IReadOnlyList<uint> CpuWords()
    {
        var psi = new ProcessStartInfo(Path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi) ?? throw new RefusalException($"cannot run {Path}");
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new RefusalException($"{Path} exited with {p.ExitCode} when asked for the CPU words");
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => uint.Parse(w, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
    }
}
