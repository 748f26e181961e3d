using System.Buffers.Binary;

namespace Resident.Export;

/// <summary>
/// The C# mirror of native/export.h's <c>struct rs_export</c>: the descriptor in the stub's data
/// that the exporter fills in (where the image's metadata lies, the stub's own extent, the
/// export's CPU words). Offsets are checked against the header by LayoutTests.
/// </summary>
public static class ExportDescriptor
{
    public const string Magic = "RSEXPORT";
    public const uint Version = 1;
    public const int CpuidMax = 16;

    public const int VersionOffset = 8;
    public const int CpuidCountOffset = 12;
    public const int MetaOffset = 16;
    public const int MetaSizeOffset = 24;
    public const int FileSizeOffset = 32;
    public const int SelfStartOffset = 40;
    public const int SelfEndOffset = 48;
    public const int BrkFromOffset = 56;
    public const int CpuidOffset = 64;
    public const int CpuidSize = 24;   // struct rs_export_cpuid
    public const int CpuidValueOffset = 16;
    public const int Size = CpuidOffset + CpuidMax * CpuidSize;

    /// <summary>What the exporter writes into the descriptor.</summary>
    /// <param name="Meta">the address of the image's metadata in the exported process.</param>
    /// <param name="CpuWords">the stub's CPU words on the export's machine, in its order.</param>
    public sealed record Fill(ulong Meta, ulong MetaSize, ulong FileSize, ulong SelfStart, ulong SelfEnd, ulong BrkFrom,
        IReadOnlyList<uint> CpuWords);

    /// <summary>Where the descriptor starts in <paramref name="segment"/> (the stub's data), checked for its version.</summary>
    public static int Find(ReadOnlySpan<byte> segment)
    {
        int at = segment.IndexOf("RSEXPORT"u8);
        if (at < 0 || segment.Length - at < Size || segment[(at + 8)..].IndexOf("RSEXPORT"u8) >= 0)
            throw new RefusalException("the export stub has no single descriptor (rebuild it: make -C native)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(segment[(at + VersionOffset)..]);
        if (version != Version)
            throw new RefusalException($"the export stub's descriptor is version {version}, this resident writes {Version}");
        return at;
    }

    /// <summary>How many CPU words the stub checks.</summary>
    public static int CpuidCount(ReadOnlySpan<byte> descriptor) =>
        (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(descriptor[CpuidCountOffset..]), CpuidMax);

    public static void Write(Span<byte> descriptor, Fill fill)
    {
        int count = CpuidCount(descriptor);
        if (fill.CpuWords.Count != count)
            throw new RefusalException($"the export stub printed {fill.CpuWords.Count} CPU words, its descriptor lists {count}");
        BinaryPrimitives.WriteUInt64LittleEndian(descriptor[MetaOffset..], fill.Meta);
        BinaryPrimitives.WriteUInt64LittleEndian(descriptor[MetaSizeOffset..], fill.MetaSize);
        BinaryPrimitives.WriteUInt64LittleEndian(descriptor[FileSizeOffset..], fill.FileSize);
        BinaryPrimitives.WriteUInt64LittleEndian(descriptor[SelfStartOffset..], fill.SelfStart);
        BinaryPrimitives.WriteUInt64LittleEndian(descriptor[SelfEndOffset..], fill.SelfEnd);
        BinaryPrimitives.WriteUInt64LittleEndian(descriptor[BrkFromOffset..], fill.BrkFrom);
        for (int i = 0; i < count; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(descriptor[(CpuidOffset + i * CpuidSize + CpuidValueOffset)..], fill.CpuWords[i]);
    }
}
