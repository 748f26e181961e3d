using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Resident.Proc;

/// <summary>
/// /proc/PID/pagemap: one little-endian 64-bit entry per virtual page
/// (Documentation/admin-guide/mm/pagemap.rst). Bit 63: the page is present in the page tables.
/// </summary>
public static class Pagemap
{
    public const ulong Present = 1UL << 63, Swapped = 1UL << 62, FileOrShared = 1UL << 61;
    const int Page = 4096;

    /// <summary>The entries of the pages [start, start + pages * 4096) from an open pagemap of process <paramref name="pid"/>.</summary>
    public static ulong[] Read(SafeFileHandle pagemap, int pid, ulong start, int pages)
    {
        var raw = new byte[pages * 8];
        int got = RandomAccess.Read(pagemap, raw, (long)(start / Page * 8));
        if (got != raw.Length)
            throw new RefusalException($"short read of /proc/{pid}/pagemap");
        var result = new ulong[pages];
        for (int i = 0; i < pages; i++)
            result[i] = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(i * 8));
        return result;
    }
}
