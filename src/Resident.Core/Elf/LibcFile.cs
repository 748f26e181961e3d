namespace Resident.Elf;

/// <summary>
/// Which mapped file is glibc's libc, by name, as /proc/PID/maps shows it: "libc.so.6" from glibc
/// 2.34 on (the file is its soname), "libc-2.31.so" before (the soname is a symlink to it, and
/// maps name the target). The one rule for every lookup in libc (getenv, __curbrk, its data).
/// </summary>
public static class LibcFile
{
    public static bool Is(string path)
    {
        string name = Path.GetFileName(path);
        if (name.StartsWith("libc.so", StringComparison.Ordinal))
            return true;
        // libc-MAJOR.MINOR.so
        return name.StartsWith("libc-", StringComparison.Ordinal) && name.EndsWith(".so", StringComparison.Ordinal)
            && name[5..^3].Split('.') is [var major, var minor] && major.Length > 0 && minor.Length > 0
            && major.All(char.IsAsciiDigit) && minor.All(char.IsAsciiDigit);
    }
}
