// resident runs on Linux only: every platform-specific API (Unix file modes, signals) is fine here.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
