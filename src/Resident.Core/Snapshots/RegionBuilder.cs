using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Resident.Format;
using Resident.Proc;
using Resident.Trace;

namespace Resident.Snapshots;

/// <summary>
/// Decides, page by page, how each page of a stopped process comes back at restore: from
/// its file (FILE), from the image (IMAGE) or as a fresh zero page (ZERO); then merges runs
/// of alike pages into regions. The rule: store a page only when no file can supply it.
/// </summary>
public sealed class RegionBuilder : IDisposable
{
    const int Page = (int)ImageFormat.PageSize;
    const ulong PmPresent = Pagemap.Present, PmSwapped = Pagemap.Swapped, PmFileOrShared = Pagemap.FileOrShared;

    /// <summary>How one page comes back. FileIndex/FileOffset only for FILE; Data (4096 bytes) only for IMAGE.</summary>
    public readonly record struct PageInfo(ulong Addr, uint Kind, uint Prot, uint FileIndex, ulong FileOffset, string Name,
        ReadOnlyMemory<byte> Data = default);

    static readonly ReadOnlyMemory<byte> ZeroPage = new byte[Page];

    readonly IStoppedProcess _process;
    readonly Pagemap _pagemap;
    readonly Dictionary<string, SafeFileHandle> _open = new(StringComparer.Ordinal);
    readonly byte[] _memPage = new byte[Page];
    readonly byte[] _filePage = new byte[Page];
    readonly PageStore _saved = new();

    public RegionBuilder(IStoppedProcess process)
    {
        _process = process;
        _pagemap = Pagemap.Open(process.Pid);
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
            throw new RefusalException($"executable anonymous memory at 0x{addr:x}: code is never stored in an image");
        if ((pm & (PmPresent | PmSwapped)) == 0)
            return new PageInfo(addr, ImageFormat.RegionZero, vma.Prot, 0, 0, vma.Name);
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
            return copied ? SavedOrZero(vma, addr) : new PageInfo(addr, ImageFormat.RegionZero, vma.Prot, 0, 0, vma.Name);
        var asFile = new PageInfo(addr, ImageFormat.RegionFile, vma.Prot, fileIndex, fileOffset, vma.Name);
        if (!copied)
            return asFile;
        ReadPage(vma, addr, _memPage);
        ReadFilePage(file.Path, fileOffset, _filePage);
        if (_memPage.AsSpan().SequenceEqual(_filePage))
            return asFile;
        if ((vma.Prot & MapsEntry.ProtExec) != 0)
            throw new RefusalException($"executable page at 0x{addr:x} differs from {file.Path}: code is never stored in an image");
        return new PageInfo(addr, ImageFormat.RegionImage, vma.Prot, 0, 0, vma.Name, _saved.Add(_memPage));
    }

    PageInfo SavedOrZero(MapsEntry vma, ulong addr)
    {
        ReadPage(vma, addr, _memPage);
        return _memPage.AsSpan().IndexOfAnyExcept((byte)0) < 0
            ? new PageInfo(addr, ImageFormat.RegionZero, vma.Prot, 0, 0, vma.Name)
            : new PageInfo(addr, ImageFormat.RegionImage, vma.Prot, 0, 0, vma.Name, _saved.Add(_memPage));
    }

    void ReadPage(MapsEntry vma, ulong addr, byte[] buffer)
    {
        // process_vm_readv honours protections: a page made inaccessible after being written
        // cannot be read, and a restore could not reproduce it faithfully anyway.
        if ((vma.Prot & MapsEntry.ProtRead) == 0)
            throw new RefusalException($"modified page without read access at 0x{addr:x} ({vma.Name})");
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

    ulong[] ReadPagemap(MapsEntry vma) => _pagemap.Read(vma.Start, (int)(vma.Length / (ulong)Page));

    /// <summary>Longest run of zero pages stored in the image to save an mmap (see <see cref="AbsorbZeroRuns"/>).</summary>
    public const int MaxAbsorbedZeroPages = 16;

    /// <summary>
    /// Turns (in place) each short run of ZERO pages that touches an IMAGE page of the same prot into
    /// IMAGE pages of zeros, so data + bss + the next saved pages become one region: one
    /// mmap at restore instead of three, for at most 64 KiB of zeros in the image (shared
    /// in the page cache; a read fault maps it like the zero page would be).
    /// </summary>
    public static List<PageInfo> AbsorbZeroRuns(List<PageInfo> pages)
    {
        SortByAddress(pages);
        var span = CollectionsMarshal.AsSpan(pages);
        for (int i = 0; i < span.Length;)
        {
            int end = RunEnd(span, i);
            ref readonly var zero = ref span[i];
            bool absorb = zero.Kind == ImageFormat.RegionZero && end - i <= MaxAbsorbedZeroPages
                && ((i > 0 && Continues(span[i - 1], zero, -1))
                    || (end < span.Length && Continues(span[end], zero, end - i)));
            for (int k = i; absorb && k < end; k++)
                span[k] = span[k] with { Kind = ImageFormat.RegionImage, Data = ZeroPage };
            i = end;
        }
        return pages;
    }

    /// <summary>A saved page of the same prot right before (n = -1) or n pages after <paramref name="zero"/>.</summary>
    static bool Continues(in PageInfo neighbour, in PageInfo zero, int n) =>
        neighbour.Kind == ImageFormat.RegionImage && neighbour.Prot == zero.Prot
        && neighbour.Addr == zero.Addr + (ulong)(long)n * (ulong)Page;

    /// <summary>
    /// Merges (after sorting <paramref name="pages"/> in place if needed) address-contiguous pages with the same kind and prot (and for FILE the same
    /// file at contiguous offsets) into regions, sorted by address. Runs may cross VMA
    /// boundaries: fewer regions mean fewer mmaps at restore; the name of the first page wins.
    /// </summary>
    public static List<Region> Merge(List<PageInfo> pages)
    {
        SortByAddress(pages);
        var span = CollectionsMarshal.AsSpan(pages);
        var regions = new List<Region>();
        for (int i = 0; i < span.Length;)
        {
            int end = RunEnd(span, i);
            regions.Add(ToRegion(span[i..end]));
            i = end;
        }
        return regions;
    }

    /// <summary>End of the run of pages starting at <paramref name="start"/> that one region can cover.</summary>
    static int RunEnd(ReadOnlySpan<PageInfo> pages, int start)
    {
        ref readonly var first = ref pages[start];
        int end = start + 1;
        for (; end < pages.Length; end++)
        {
            ref readonly var p = ref pages[end];
            ulong n = (ulong)(end - start) * (ulong)Page;
            bool joins = p.Addr == first.Addr + n && p.Kind == first.Kind && p.Prot == first.Prot
                && (p.Kind != ImageFormat.RegionFile || (p.FileIndex == first.FileIndex && p.FileOffset == first.FileOffset + n));
            if (!joins)
                break;
        }
        return end;
    }

    static Region ToRegion(ReadOnlySpan<PageInfo> run)
    {
        ref readonly var f = ref run[0];
        ReadOnlyMemory<byte>[]? saved = null;
        if (f.Kind == ImageFormat.RegionImage)
        {
            saved = new ReadOnlyMemory<byte>[run.Length];
            for (int k = 0; k < run.Length; k++)
                saved[k] = run[k].Data;
        }
        ulong end = f.Addr + (ulong)run.Length * (ulong)Page;
        return new Region(f.Addr, end, f.Kind, f.Prot, f.FileIndex, f.FileOffset, 0, f.Name) { Pages = saved };
    }

    // Pages arrive in address order (maps is sorted); sort, in place, only when they do not.
    static void SortByAddress(List<PageInfo> pages)
    {
        for (int i = 1; i < pages.Count; i++)
            if (pages[i].Addr <= pages[i - 1].Addr)
            {
                pages.Sort((x, y) => x.Addr.CompareTo(y.Addr));
                return;
            }
    }

    /// <summary>
    /// Saved pages packed into 1 MiB chunks. Thousands of separate 4 KiB arrays would each
    /// survive into gen2 and be copied by the GC on the way (half the time of a 10 MB capture);
    /// chunks live in the large object heap, which is not compacted.
    /// </summary>
    sealed class PageStore
    {
        const int ChunkPages = 256;
        readonly List<byte[]> _chunks = [];
        int _used = ChunkPages;

        public ReadOnlyMemory<byte> Add(ReadOnlySpan<byte> page)
        {
            if (_used == ChunkPages)
            {
                _chunks.Add(new byte[ChunkPages * Page]);
                _used = 0;
            }
            var slot = new Memory<byte>(_chunks[^1], _used++ * Page, Page);
            page.CopyTo(slot.Span);
            return slot;
        }
    }
}
