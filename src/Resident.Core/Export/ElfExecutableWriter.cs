using System.Diagnostics;
using LibObjectFile.Elf;

namespace Resident.Export;

/// <summary>Where a segment's bytes come from.</summary>
public abstract record SegmentSource;

/// <summary>The segment's Size bytes of the file at <paramref name="Path"/> from <paramref name="Offset"/>; zeros past the file's end.</summary>
public sealed record FileSlice(string Path, long Offset) : SegmentSource;

/// <summary><paramref name="Data"/>, zero-padded to the segment's Size.</summary>
public sealed record ByteContent(byte[] Data) : SegmentSource;

/// <summary>
/// One PT_LOAD: [<paramref name="VirtualAddress"/>, <paramref name="VirtualAddress"/> + <paramref name="Size"/>),
/// both page-aligned; <paramref name="Prot"/> is mmap's PROT_READ 1 | PROT_WRITE 2 | PROT_EXEC 4.
/// </summary>
public sealed record ExportSegment(ulong VirtualAddress, ulong Size, uint Prot, SegmentSource Source);

/// <summary>
/// Writes a static x86-64 executable (docs/export-plan.md): the ELF header, the program headers and
/// each segment's bytes on a page of its own, modelled with LibObjectFile. No section headers, no
/// PT_INTERP, no dynamic section. Segment bytes are streamed from their source, a file opened one
/// at a time, so whole libraries can be segments without being held in memory.
/// </summary>
public static class ElfExecutableWriter
{
    const ulong Page = 0x1000;

    /// <summary>
    /// Writes to <paramref name="path"/> one PT_LOAD per segment in address order (p_filesz = p_memsz
    /// = Size, p_offset page-aligned, so congruent to p_vaddr), a PT_GNU_STACK (RW, a stack without
    /// exec) and e_entry = <paramref name="entry"/>. The file is not made executable. ArgumentException
    /// when the segments are none, unaligned, empty, overlapping or otherwise not loadable; on any
    /// failure no partial file is left at <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, IReadOnlyList<ExportSegment> segments, ulong entry)
    {
        var sorted = Checked(segments);
        // Without the default sections (the null section and its section header table) the file has no sections at all.
        var elf = new ElfFile(ElfArch.X86_64, addDefaultSections: false) { FileType = ElfFileType.Executable, EntryPointAddress = entry };
        elf.Add(new ElfProgramHeaderTable());
        var streams = sorted.Select(s => new SegmentStream(s)).ToArray();
        for (int i = 0; i < sorted.Length; i++)
        {
            var s = sorted[i];
            var data = elf.Add(new ElfStreamContentData(streams[i]) { FileAlignment = (uint)Page });
            elf.Segments.Add(new ElfSegment
            {
                Type = ElfSegmentTypeCore.Load,
                Range = data,
                VirtualAddress = s.VirtualAddress,
                PhysicalAddress = s.VirtualAddress,
                SizeInMemory = s.Size,
                Flags = ProgramHeaderFlags(s.Prot),
                VirtualAddressAlignment = Page,
            });
        }
        // the stack read and write, not exec
        elf.Segments.Add(new ElfSegment { Type = new ElfSegmentType(ElfNative.PT_GNU_STACK), Flags = ProgramHeaderFlags(1 | 2) });

        var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        try
        {
            using (file)
                elf.Write(file);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
        finally
        {
            // a segment's file stays open only when its copy failed half way
            foreach (var stream in streams)
                stream.Dispose();
        }
    }

    /// <summary>The segments in address order, each checked to be loadable as a PT_LOAD of its own.</summary>
    static ExportSegment[] Checked(IReadOnlyList<ExportSegment> segments)
    {
        if (segments.Count == 0)
            throw new ArgumentException("an executable needs at least one segment");
        var sorted = segments.OrderBy(s => s.VirtualAddress).ToArray();
        ulong end = 0;
        foreach (var s in sorted)
        {
            string at = $"segment {s.VirtualAddress:x}+{s.Size:x}";
            if (s.VirtualAddress % Page != 0 || s.Size % Page != 0 || s.Size == 0)
                throw new ArgumentException($"{at} is not a whole, non-empty number of pages");
            if (s.VirtualAddress < end)
                throw new ArgumentException($"{at} overlaps the segment before it, which ends at {end:x}");
            if (s.VirtualAddress + s.Size < s.VirtualAddress)
                throw new ArgumentException($"{at} wraps around the address space");
            if ((s.Prot & ~7u) != 0)
                throw new ArgumentException($"{at} has protection {s.Prot}, beyond PROT_READ|PROT_WRITE|PROT_EXEC");
            if (s.Source is not (FileSlice or ByteContent))
                throw new ArgumentException($"{at} has no source");
            if (s.Source is ByteContent b && (ulong)b.Data.Length > s.Size)
                throw new ArgumentException($"{at} is smaller than its {b.Data.Length} bytes of content");
            if (s.Source is FileSlice { Offset: < 0 } f)
                throw new ArgumentException($"{at} starts at offset {f.Offset} of {f.Path}");
            end = s.VirtualAddress + s.Size;
        }
        return sorted;
    }

    /// <summary>mmap's PROT_* bits as the program header's PF_* bits (PF_X is 1 and PF_R 4: the other way round).</summary>
    static ElfSegmentFlags ProgramHeaderFlags(uint prot) =>
        new(((prot & 1) != 0 ? ElfNative.PF_R : 0) | ((prot & 2) != 0 ? ElfNative.PF_W : 0) | ((prot & 4) != 0 ? ElfNative.PF_X : 0));

    /// <summary>
    /// A segment's bytes as the read-only, seekable stream LibObjectFile copies from: Size bytes of the
    /// source from its offset, zeros past the source's end. The source is opened at the first read and
    /// closed at the last byte, so at most one segment's file is open while the executable is written.
    /// </summary>
    sealed class SegmentStream(ExportSegment segment) : Stream
    {
        Stream? _source;
        long _position;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => (long)segment.Size;

        public override long Position
        {
            get => _position;
            set => Seek(value, SeekOrigin.Begin);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var chunk = buffer[..(int)Math.Clamp(Length - _position, 0, buffer.Length)];
            if (chunk.IsEmpty)
                return 0;
            _source ??= segment.Source switch
            {
                FileSlice f => new FileStream(f.Path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0),
                ByteContent b => new MemoryStream(b.Data, writable: false),
                _ => throw new UnreachableException("Checked refuses any other source"),
            };
            _source.Position = (segment.Source is FileSlice slice ? slice.Offset : 0) + _position;
            int got = 0;
            for (int n; got < chunk.Length && (n = _source.Read(chunk[got..])) > 0;)
                got += n;
            chunk[got..].Clear();
            _position += chunk.Length;
            if (_position == Length)
                CloseSource();
            return chunk.Length;
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            long to = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => Length + offset,
            };
            ArgumentOutOfRangeException.ThrowIfNegative(to, nameof(offset));
            return _position = to;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                CloseSource();
            base.Dispose(disposing);
        }

        void CloseSource()
        {
            _source?.Dispose();
            _source = null;
        }

        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
