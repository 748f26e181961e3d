using System.Buffers.Binary;
using System.Text;

namespace Resident.Elf;

/// <summary>
/// Symbol lookup in an ELF file's <c>.dynsym</c>, found through the section headers: what the
/// capture needs to know about ld.so and libc (an exported function or variable's offset from
/// the load base). Throws InvalidDataException or an index exception on a malformed file.
/// </summary>
public static class DynamicSymbols
{
    const uint ShtDynsym = 11;

    /// <summary>st_value of the defined symbol <paramref name="name"/>, or null.</summary>
    public static ulong? Find(byte[] elf, string name)
    {
        if (elf.Length < 64)
            throw new InvalidDataException("truncated ELF header");
        ulong shoff = U64(elf, 40);
        int shentsize = U16(elf, 58), shnum = U16(elf, 60);
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (U32(elf, sh + 4) != ShtDynsym)
                continue;
            int strSh = checked((int)shoff + (int)U32(elf, sh + 40) * shentsize);
            int strtab = (int)U64(elf, strSh + 24);
            int symtab = (int)U64(elf, sh + 24), size = (int)U64(elf, sh + 32), entsize = (int)U64(elf, sh + 56);
            for (int s = symtab; s + entsize <= symtab + size; s += entsize)
            {
                ushort shndx = U16(elf, s + 6);
                if (shndx != 0 && CString(elf, strtab + (int)U32(elf, s)) == name)
                    return U64(elf, s + 8);
            }
        }
        return null;
    }

    /// <summary>The NUL-terminated ASCII string at <paramref name="offset"/>.</summary>
    public static string CString(byte[] b, int offset)
    {
        int n = b.AsSpan(offset).IndexOf((byte)0);
        return Encoding.ASCII.GetString(b, offset, n < 0 ? b.Length - offset : n);
    }

    static ushort U16(byte[] b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o));
    static uint U32(byte[] b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(o));
    static ulong U64(byte[] b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(o));
}
