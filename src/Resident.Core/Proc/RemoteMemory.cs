using System.Text;

namespace Resident.Proc;

/// <summary>Reads another process's memory; any thread may call (no ptrace request involved).</summary>
internal static class RemoteMemory
{
    const int PageSize = Interop.PageSize;

    /// <summary>
    /// Reads exactly buffer.Length bytes: process_vm_readv first, then /proc/PID/mem for what
    /// it could not read (it also needs no ptrace stop). Throws RefusalException otherwise.
    /// </summary>
    public static void Read(int pid, ulong addr, Span<byte> buffer)
    {
        int done = ReadVm(pid, addr, buffer);
        if (done < buffer.Length)
            done += ReadProcMem(pid, addr + (ulong)done, buffer[done..]);
        if (done < buffer.Length)
            throw new RefusalException($"cannot read {buffer.Length} bytes at 0x{addr:x} of process {pid} (read {done})");
    }

    static int ReadVm(int pid, ulong addr, Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n;
            try { n = Interop.ProcessVmRead(pid, addr + (ulong)done, buffer[done..]); }
            catch (ErrnoException) { break; }
            if (n <= 0)
                break;
            done += n;
        }
        return done;
    }

    static int ReadProcMem(int pid, ulong addr, Span<byte> buffer)
    {
        try
        {
            using var mem = File.OpenHandle($"/proc/{pid}/mem");
            int done = 0;
            while (done < buffer.Length)
            {
                int n = RandomAccess.Read(mem, buffer[done..], (long)addr + done);
                if (n <= 0)
                    break;
                done += n;
            }
            return done;
        }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }

    /// <summary>PATH_MAX: the longest path the kernel resolves, NUL included (native/restore.h RS_PATH_MAX).</summary>
    public const int PathMax = 4096;

    /// <summary>A NUL-terminated string of at most <paramref name="max"/> bytes, read page by page so it never reads past a mapping's end.</summary>
    public static string ReadCString(int pid, ulong addr, int max = PathMax)
    {
        var bytes = new List<byte>();
        Span<byte> chunk = stackalloc byte[PageSize];
        while (bytes.Count < max)
        {
            int len = (int)Math.Min((ulong)(max - bytes.Count), PageSize - (addr % PageSize));
            Read(pid, addr, chunk[..len]);
            int nul = chunk[..len].IndexOf((byte)0);
            if (nul >= 0)
            {
                bytes.AddRange(chunk[..nul].ToArray());
                break;
            }
            bytes.AddRange(chunk[..len].ToArray());
            addr += (ulong)len;
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
