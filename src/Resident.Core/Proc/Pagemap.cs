using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Resident.Proc;

/// <summary>
/// /proc/PID/pagemap, open: one little-endian 64-bit entry per virtual page
/// (Documentation/admin-guide/mm/pagemap.rst). Bit 63: the page is present in the page tables.
/// </summary>
public sealed class Pagemap : IDisposable
{
    public const ulong Present = 1UL << 63, Swapped = 1UL << 62, FileOrShared = 1UL << 61;

    readonly SafeFileHandle _file;
    readonly int _pid;

    Pagemap(int pid)
    {
        _pid = pid;
        _file = File.OpenHandle($"/proc/{pid}/pagemap");
    }

    public static Pagemap Open(int pid) => new(pid);

    public void Dispose() => _file.Dispose();

    /// <summary>The entries of the pages [start, start + pages * page size).</summary>
    public ulong[] Read(ulong start, int pages)
    {
        var raw = new byte[pages * 8];
        int got = RandomAccess.Read(_file, raw, (long)(start / Interop.PageSize * 8));
        if (got != raw.Length)
            throw new RefusalException($"short read of /proc/{_pid}/pagemap");
        var result = new ulong[pages];
        for (int i = 0; i < pages; i++)
            result[i] = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(i * 8));
        return result;
    }
}
