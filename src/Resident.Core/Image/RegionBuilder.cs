using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Resident.Capture;

namespace Resident.Image;

/// <summary>
/// Decides, page by page, how each page of a stopped process comes back at restore: from
/// its file (FILE), from the image (IMAGE) or as a fresh zero page (ZERO); then merges runs
/// of alike pages into regions. The rule: store a page only when no file can supply it.
/// </summary>
public sealed class RegionBuilder : IDisposable
{
    const int Page = (int)ImageFormat.PageSize;
    // /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst)
    const ulong PmPresent = 1UL << 63, PmSwapped = 1UL << 62, PmFileOrShared = 1UL << 61;

    /// <summary>How one page comes back. FileIndex/FileOffset only for FILE; Data only for IMAGE.</summary>
    public readonly record struct PageInfo(ulong Addr, uint Kind, uint Prot, uint FileIndex, ulong FileOffset, string Name, byte[]? Data);

    readonly IStoppedProcess _process;
    readonly SafeFileHandle _pagemap;
    readonly Dictionary<string, SafeFileHandle> _open = new(StringComparer.Ordinal);
    readonly byte[] _memPage = new byte[Page];
    readonly byte[] _filePage = new byte[Page];

    public RegionBuilder(IStoppedProcess process)
    {
        _process = process;
        _pagemap = File.OpenHandle($"/proc/{process.Pid}/pagemap");
    }

    public void Dispose()
    {
        _pagemap.Dispose();
        foreach (var h in _open.Values) h.Dispose();
    }

    /// <summary>
    /// The pages of one ordinary VMA. For a file VMA, <paramref name="file"/> is its files[]
    /// entry (already checked to be the inode the VMA maps) and <paramref name="fileIndex"/> its index.
    /// </summary>
    public IEnumerable<PageInfo> Classify(MapsEntry vma, FileEntry? file, uint fileIndex)
    {
        var pagemap = ReadPagemap(vma);
        for (int i = 0; i < pagemap.Length; i++)
        {
            ulong addr = vma.Start + (ulong)i * (ulong)Page;
            yield return file == null
                ? AnonymousPage(vma, addr, pagemap[i])
                : FilePage(vma, file, fileIndex, addr, vma.Offset + (ulong)i * (ulong)Page, pagemap[i]);
        }
    }

    PageInfo AnonymousPage(MapsEntry vma, ulong addr, ulong pm)
    {
        if ((vma.Prot & MapsEntry.ProtExec) != 0)
            throw new CaptureException($"executable anonymous memory at 0x{addr:x}: code is never stored in an image");
        if ((pm & (PmPresent | PmSwapped)) == 0)
            return new PageInfo(addr, ImageFormat.RegionZero, vma.Prot, 0, 0, vma.Name, null);
        return SavedOrZero(vma, addr);
    }

    // A private file page that was never written is the page cache's page (pagemap says
    // "file") or not present at all: the file supplies it. One that was written is an
    // anonymous copy: compare it with the file, because relocation often rewrites a word
    // with the value it already had, and int3 removal restores the original text.
    PageInfo FilePage(MapsEntry vma, FileEntry file, uint fileIndex, ulong addr, ulong fileOffset, ulong pm)
    {
        bool copied = (pm & PmSwapped) != 0 || ((pm & PmPresent) != 0 && (pm & PmFileOrShared) == 0);
        bool beyondEof = fileOffset >= file.Size;
        if (beyondEof)
            return copied ? SavedOrZero(vma, addr) : new PageInfo(addr, ImageFormat.RegionZero, vma.Prot, 0, 0, vma.Name, null);
        var asFile = new PageInfo(addr, ImageFormat.RegionFile, vma.Prot, fileIndex, fileOffset, vma.Name, null);
        if (!copied)
            return asFile;
        ReadPage(vma, addr, _memPage);
        ReadFilePage(file.Path, fileOffset, _filePage);
        if (_memPage.AsSpan().SequenceEqual(_filePage))
            return asFile;
        if ((vma.Prot & MapsEntry.ProtExec) != 0)
            throw new CaptureException($"executable page at 0x{addr:x} differs from {file.Path}: code is never stored in an image");
        return new PageInfo(addr, ImageFormat.RegionImage, vma.Prot, 0, 0, vma.Name, (byte[])_memPage.Clone());
    }

    PageInfo SavedOrZero(MapsEntry vma, ulong addr)
    {
        ReadPage(vma, addr, _memPage);
        return _memPage.AsSpan().IndexOfAnyExcept((byte)0) < 0
            ? new PageInfo(addr, ImageFormat.RegionZero, vma.Prot, 0, 0, vma.Name, null)
            : new PageInfo(addr, ImageFormat.RegionImage, vma.Prot, 0, 0, vma.Name, (byte[])_memPage.Clone());
    }

    void ReadPage(MapsEntry vma, ulong addr, byte[] buffer)
    {
        // process_vm_readv honours protections: a page made inaccessible after being written
        // cannot be read, and a restore could not reproduce it faithfully anyway.
        if ((vma.Prot & MapsEntry.ProtRead) == 0)
            throw new CaptureException($"modified page without read access at 0x{addr:x} ({vma.Name})");
        _process.ReadMemory(addr, buffer);
    }

    void ReadFilePage(string path, ulong offset, byte[] buffer)
    {
        if (!_open.TryGetValue(path, out var h))
            _open[path] = h = File.OpenHandle(path);
        Array.Clear(buffer);
        int total = 0, n;
        while (total < buffer.Length && (n = RandomAccess.Read(h, buffer.AsSpan(total), (long)offset + total)) > 0)
            total += n; // short at EOF: the rest stays zero, as the kernel fills a mapped tail page
    }

    ulong[] ReadPagemap(MapsEntry vma)
    {
        int pages = (int)(vma.Length / (ulong)Page);
        var raw = new byte[pages * 8];
        int got = RandomAccess.Read(_pagemap, raw, (long)(vma.Start / (ulong)Page * 8));
        if (got != raw.Length)
            throw new CaptureException($"short read of /proc/{_process.Pid}/pagemap");
        var result = new ulong[pages];
        for (int i = 0; i < pages; i++)
            result[i] = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(i * 8));
        return result;
    }

    /// <summary>Longest run of zero pages stored in the image to save an mmap (see <see cref="AbsorbZeroRuns"/>).</summary>
    public const int MaxAbsorbedZeroPages = 16;

    /// <summary>
    /// Turns each short run of ZERO pages that touches an IMAGE page of the same prot into
    /// IMAGE pages of zeros, so data + bss + the next saved pages become one region: one
    /// mmap at restore instead of three, for at most 64 KiB of zeros in the image (shared
    /// in the page cache; a read fault maps it like the zero page would be).
    /// </summary>
    public static List<PageInfo> AbsorbZeroRuns(IEnumerable<PageInfo> pages)
    {
        var list = pages.OrderBy(p => p.Addr).ToList();
        for (int i = 0; i < list.Count;)
        {
            int end = i;
            while (end < list.Count && list[end].Kind == ImageFormat.RegionZero && list[end].Prot == list[i].Prot
                   && list[end].Addr == list[i].Addr + (ulong)(end - i) * (ulong)Page)
                end++;
            if (end == i) { i++; continue; }
            bool before = i > 0 && IsSavedNeighbour(list[i - 1], list[i], list[i].Addr - (ulong)Page);
            bool after = end < list.Count && IsSavedNeighbour(list[end], list[i], list[end - 1].Addr + (ulong)Page);
            if (end - i <= MaxAbsorbedZeroPages && (before || after))
                for (int k = i; k < end; k++)
                    list[k] = list[k] with { Kind = ImageFormat.RegionImage, Data = new byte[Page] };
            i = end;
        }
        return list;
    }

    static bool IsSavedNeighbour(PageInfo neighbour, PageInfo zero, ulong expectedAddr) =>
        neighbour.Kind == ImageFormat.RegionImage && neighbour.Prot == zero.Prot && neighbour.Addr == expectedAddr;

    /// <summary>
    /// Merges address-contiguous pages with the same kind and prot (and for FILE the same
    /// file at contiguous offsets) into regions, sorted by address. Runs may cross VMA
    /// boundaries: fewer regions mean fewer mmaps at restore; the name of the first page wins.
    /// </summary>
    public static List<Region> Merge(IEnumerable<PageInfo> pages)
    {
        var regions = new List<Region>();
        var data = new List<byte[]>();
        PageInfo? first = null;
        ulong end = 0, nextOffset = 0;

        void Flush()
        {
            if (first is not PageInfo f) return;
            byte[]? bytes = f.Kind == ImageFormat.RegionImage ? Concat(data) : null;
            regions.Add(new Region(f.Addr, end, f.Kind, f.Prot, f.FileIndex, f.FileOffset, 0, f.Name) { Data = bytes });
            data.Clear();
        }

        foreach (var p in pages.OrderBy(p => p.Addr))
        {
            bool joins = first is PageInfo f && p.Addr == end && p.Kind == f.Kind && p.Prot == f.Prot
                && (p.Kind != ImageFormat.RegionFile || (p.FileIndex == f.FileIndex && p.FileOffset == nextOffset));
            if (!joins)
            {
                Flush();
                first = p;
            }
            if (p.Data != null) data.Add(p.Data);
            end = p.Addr + (ulong)Page;
            nextOffset = p.FileOffset + (ulong)Page;
        }
        Flush();
        return regions;
    }

    static byte[] Concat(List<byte[]> parts)
    {
        var result = new byte[parts.Sum(p => p.Length)];
        int o = 0;
        foreach (var p in parts) { p.CopyTo(result, o); o += p.Length; }
        return result;
    }
}
