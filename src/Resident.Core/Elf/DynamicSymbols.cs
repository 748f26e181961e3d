using System.Buffers.Binary;
using System.Text;

namespace Resident.Elf;

/// <summary>
/// Symbol lookup in an ELF file's <c>.dynsym</c>, found through the section headers: what the
/// capture needs to know about ld.so and libc (an exported function or variable's offset from
/// the load base). Every offset the file gives is checked against its length: a malformed file
/// is an InvalidDataException, never an index exception.
/// </summary>
public static class DynamicSymbols
{
    const uint ShtDynsym = 11;
    const int SymSize = 24, ShdrSize = 64;

    /// <summary>st_value of the defined symbol <paramref name="name"/>, or null.</summary>
    public static ulong? Find(byte[] elf, string name)
    {
        if (elf.Length < 64)
            throw new InvalidDataException("truncated ELF header");
        ulong shoff = U64(elf, 40);
        int shentsize = U16(elf, 58), shnum = U16(elf, 60);
        if (shnum > 0 && shentsize < ShdrSize)
            throw new InvalidDataException($"section header size {shentsize}");
        for (int i = 0; i < shnum; i++)
        {
            int sh = Offset(elf, shoff + (ulong)(i * shentsize), ShdrSize, "section header");
            if (U32(elf, sh + 4) != ShtDynsym)
                continue;
            uint link = U32(elf, sh + 40);
            if (link >= shnum)
                throw new InvalidDataException($".dynsym links to section {link} of {shnum}");
            int strSh = Offset(elf, shoff + (ulong)link * (ulong)shentsize, ShdrSize, "string table header");
            ulong strtab = U64(elf, strSh + 24), strSize = U64(elf, strSh + 32);
            Offset(elf, strtab, strSize, ".dynstr");
            ulong symtab = U64(elf, sh + 24), size = U64(elf, sh + 32), entsize = U64(elf, sh + 56);
            if (entsize < SymSize)
                throw new InvalidDataException($".dynsym entry size {entsize}");
            int start = Offset(elf, symtab, size, ".dynsym");
            for (ulong s = 0; s + entsize <= size; s += entsize)
            {
                int sym = start + (int)s;
                uint nameOff = U32(elf, sym);
                if (nameOff >= strSize)
                    throw new InvalidDataException($"symbol name at {nameOff} past .dynstr ({strSize} bytes)");
                if (U16(elf, sym + 6) != 0 && CString(elf, (int)strtab + (int)nameOff) == name)
                    return U64(elf, sym + 8);
            }
        }
        return null;
    }

    /// <summary>The NUL-terminated ASCII string at <paramref name="offset"/>.</summary>
    public static string CString(byte[] b, int offset)
    {
        if (offset < 0 || offset > b.Length)
            throw new InvalidDataException($"string at {offset} past the end ({b.Length} bytes)");
        int n = b.AsSpan(offset).IndexOf((byte)0);
        return Encoding.ASCII.GetString(b, offset, n < 0 ? b.Length - offset : n);
    }

    /// <summary>
    /// <paramref name="offset"/> as an index when [offset, offset + length) lies in
    /// <paramref name="b"/>, else InvalidDataException naming <paramref name="what"/>.
    /// </summary>
    public static int Offset(byte[] b, ulong offset, ulong length, string what)
    {
        if (offset > (ulong)b.Length || length > (ulong)b.Length - offset)
            throw new InvalidDataException($"{what} at 0x{offset:x} (+0x{length:x}) past the end of the file (0x{b.Length:x} bytes)");
        return (int)offset;
    }

    static ushort U16(byte[] b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(Offset(b, (ulong)o, 2, "field")));
    static uint U32(byte[] b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(Offset(b, (ulong)o, 4, "field")));
    static ulong U64(byte[] b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(Offset(b, (ulong)o, 8, "field")));
}
