using System.Runtime.Versioning;

// The transports and the sandbox socket server are Linux code.
[assembly: SupportedOSPlatform("linux")]
