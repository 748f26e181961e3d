using System.Runtime.InteropServices;
using Resident.Format;

namespace Resident.Tests.Faults;

/// <summary>
/// Edits a registered image file in place, the way corruption or a hostile writer would: flip
/// bytes (leaving the checksum stale, as a disk error does) or set fields and re-seal the checksum
/// (as someone who knows the format does, so that the validation behind the checksum is what
/// must refuse). Offsets come from the C# mirror of image.h.
/// </summary>
public sealed class ImageEdit(string path)
{
    readonly byte[] bytes = File.ReadAllBytes(path);

    public RsHeader Header => MemoryMarshal.Read<RsHeader>(bytes);

    public static int HeaderSize => Marshal.SizeOf<RsHeader>();

    public static int Offset(string field) => (int)Marshal.OffsetOf<RsHeader>(field);

    /// <summary>File offset of entry I of a table (files, regions, patches, env).</summary>
    public long Entry(RsTable table, int i) => (long)table.Offset + (long)i * table.EntrySize;

    public void Flip(long offset, byte mask = 0x5a) => bytes[offset] ^= mask;

    public uint U32(long offset) => BitConverter.ToUInt32(bytes, (int)offset);

    public ulong U64(long offset) => BitConverter.ToUInt64(bytes, (int)offset);

    public void SetU32(long offset, uint v) => BitConverter.TryWriteBytes(bytes.AsSpan((int)offset, 4), v);

    public void SetU64(long offset, ulong v) => BitConverter.TryWriteBytes(bytes.AsSpan((int)offset, 8), v);

    /// <summary>Recomputes the checksum over [0, meta_size) the way the writer does.</summary>
    public void Reseal()
    {
        int at = Offset(nameof(RsHeader.Checksum));
        SetU64(at, 0);
        SetU64(at, ImageFormat.Checksum(bytes.AsSpan(0, (int)Header.MetaSize)));
    }

    /// <summary>Writes the edited bytes back into the same file (same inode, owner and mode).</summary>
    public void Save()
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Write(bytes);
    }
}
