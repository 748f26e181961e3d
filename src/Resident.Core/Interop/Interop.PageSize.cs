namespace Resident;

internal static partial class Interop
{
    /// <summary>The page size of x86-64 Linux, which every image is laid out in (image.h RS_PAGE).</summary>
    public const int PageSize = 4096;
}
