namespace Resident.Tests.Integration.Harness;

/// <summary>
/// How many times the repeated tests repeat: a few in CI (the whole suite must stay well under
/// 30 minutes on two cores), many with RESIDENT_TEST_LONG=1 (`RESIDENT_TEST_LONG=1 dotnet test`).
/// </summary>
public static class LongMode
{
    public static bool On => Environment.GetEnvironmentVariable("RESIDENT_TEST_LONG") == "1";

    public static int Runs(int ci, int full) => On ? full : ci;
}
