using System.Buffers.Binary;

namespace Resident.Proc;

/// <summary>The auxiliary vector (Elf64_auxv_t pairs up to AT_NULL), from /proc/PID/auxv or the stack.</summary>
public sealed class Auxv
{
    public const ulong AT_NULL = 0, AT_PHDR = 3, AT_PHENT = 4, AT_PHNUM = 5, AT_BASE = 7, AT_ENTRY = 9,
        AT_PLATFORM = 15, AT_HWCAP = 16, AT_SECURE = 23, AT_BASE_PLATFORM = 24, AT_RANDOM = 25,
        AT_HWCAP2 = 26, AT_EXECFN = 31, AT_SYSINFO_EHDR = 33;

    /// <summary>Entries in order, without the terminating AT_NULL.</summary>
    public IReadOnlyList<(ulong Type, ulong Value)> Entries { get; }

    public Auxv(IReadOnlyList<(ulong Type, ulong Value)> entries) => Entries = entries;

    public static Auxv Read(int pid) => Parse(File.ReadAllBytes($"/proc/{pid}/auxv"));

    /// <summary>Parses little-endian 16-byte pairs up to AT_NULL; throws FormatException if AT_NULL is missing.</summary>
    public static Auxv Parse(ReadOnlySpan<byte> data)
    {
        var entries = new List<(ulong, ulong)>();
        for (int i = 0; i + 16 <= data.Length; i += 16)
        {
            ulong type = BinaryPrimitives.ReadUInt64LittleEndian(data[i..]);
            if (type == AT_NULL)
                return new Auxv(entries);
            entries.Add((type, BinaryPrimitives.ReadUInt64LittleEndian(data[(i + 8)..])));
        }
        throw new FormatException("auxv has no AT_NULL terminator");
    }

    public ulong? Find(ulong type)
    {
        foreach (var (t, v) in Entries)
            if (t == type)
                return v;
        return null;
    }

    /// <summary>The value of a type the kernel always supplies on x86_64; FormatException if absent.</summary>
    public ulong Get(ulong type) => Find(type) ?? throw new FormatException($"auxv has no entry of type {type}");
}
