using System.Buffers.Binary;
using System.Text;

namespace Resident.Elf;

/// <summary>
/// The few facts of an ELF64 file the checks need: header, program headers, PT_INTERP,
/// DT_FLAGS_1 and bytes at a virtual address. A small reader rather than LibObjectFile:
/// only the 64-byte header and the program header table are read (LibObjectFile parses
/// every section of a possibly 100 MB file), and it has no reflection at all.
/// </summary>
public sealed class ElfFile
{
    public const ushort EtExec = 2;
    public const ushort EtDyn = 3;
    public const ushort EmX86_64 = 62;
    public const uint PtLoad = 1;
    public const uint PtDynamic = 2;
    public const uint PtInterp = 3;

    /// <summary>sizeof(Elf64_Ehdr): AT_PHDR is this far past the executable's first byte (native/restore.h RS_EHDR_SIZE).</summary>
    public const ulong HeaderSize = 64;
    const long DtFlags1 = 0x6ffffffb;
    const ulong Df1Pie = 0x08000000;

    public readonly record struct ProgramHeader(uint Type, uint Flags, ulong Offset, ulong VAddr, ulong FileSize, ulong MemSize);

    readonly string _path;
    public byte Class { get; }
    public ushort Type { get; }
    public ushort Machine { get; }
    public ulong Entry { get; }
    public IReadOnlyList<ProgramHeader> ProgramHeaders { get; }

    ElfFile(string path, byte cls, ushort type, ushort machine, ulong entry, IReadOnlyList<ProgramHeader> phdrs)
    {
        _path = path; Class = cls; Type = type; Machine = machine; Entry = entry; ProgramHeaders = phdrs;
    }

    /// <summary>Reads the header and program headers; throws InvalidDataException unless it is a little-endian ELF64.</summary>
    public static ElfFile Read(string path)
    {
        using var f = File.OpenHandle(path);
        var hdr = new byte[64];
        if (RandomAccess.Read(f, hdr, 0) != 64 || !hdr.AsSpan(0, 4).SequenceEqual(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }))
            throw new InvalidDataException("not an ELF file");
        byte cls = hdr[4];
        if (cls != 2 || hdr[5] != 1)
            return new ElfFile(path, cls, 0, U16(hdr, 18), 0, []);
        ulong phoff = U64(hdr, 32);
        ushort phentsize = U16(hdr, 54), phnum = U16(hdr, 56);
        if (phentsize < 56 || phnum > 4096)
            throw new InvalidDataException("bad program header table");
        var table = new byte[phentsize * phnum];
        if (phoff > long.MaxValue || RandomAccess.Read(f, table, (long)phoff) != table.Length)
            throw new InvalidDataException("truncated program header table");
        var phdrs = new ProgramHeader[phnum];
        for (int i = 0; i < phnum; i++)
        {
            int o = i * phentsize;
            phdrs[i] = new ProgramHeader(U32(table, o), U32(table, o + 4), U64(table, o + 8), U64(table, o + 16),
                U64(table, o + 32), U64(table, o + 40));
        }
        return new ElfFile(path, cls, U16(hdr, 16), U16(hdr, 18), U64(hdr, 24), phdrs);
    }

    /// <summary>The PT_INTERP path, or null when there is none.</summary>
    public string? Interpreter
    {
        get
        {
            foreach (var ph in ProgramHeaders)
                if (ph.Type == PtInterp)
                    return Encoding.UTF8.GetString(ReadAtOffset(ph.Offset, (int)Math.Min(ph.FileSize, 4096))).TrimEnd('\0');
            return null;
        }
    }

    /// <summary>True when PT_DYNAMIC holds DT_FLAGS_1 with DF_1_PIE (a PIE, static or not).</summary>
    public bool IsPieFlagged
    {
        get
        {
            foreach (var ph in ProgramHeaders)
            {
                if (ph.Type != PtDynamic)
                    continue;
                var dyn = ReadAtOffset(ph.Offset, (int)Math.Min(ph.FileSize, 1 << 20));
                for (int o = 0; o + 16 <= dyn.Length; o += 16)
                {
                    long tag = (long)U64(dyn, o);
                    if (tag == 0)
                        break;
                    if (tag == DtFlags1)
                        return (U64(dyn, o + 8) & Df1Pie) != 0;
                }
            }
            return false;
        }
    }

    /// <summary>Bytes of the file image at virtual address <paramref name="vaddr"/> (must lie in one PT_LOAD's file part).</summary>
    public byte[] ReadAtVAddr(ulong vaddr, int count)
    {
        foreach (var ph in ProgramHeaders)
            if (ph.Type == PtLoad && vaddr >= ph.VAddr && (ulong)count <= ph.FileSize && vaddr - ph.VAddr <= ph.FileSize - (ulong)count)
                return ReadAtOffset(ph.Offset + (vaddr - ph.VAddr), count);
        throw new InvalidDataException($"address 0x{vaddr:x} is not in the file part of a PT_LOAD segment");
    }

    byte[] ReadAtOffset(ulong offset, int count)
    {
        using var f = File.OpenHandle(_path);
        var buf = new byte[count];
        if (offset > long.MaxValue || RandomAccess.Read(f, buf, (long)offset) != count)
            throw new InvalidDataException("truncated file");
        return buf;
    }

    static ushort U16(byte[] b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o));
    static uint U32(byte[] b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(o));
    static ulong U64(byte[] b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(o));
}
