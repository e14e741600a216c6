using System.Runtime.Versioning;

// The tool reads payloads with libc (open, stat, mmap) and talks to Xen through Linux's privcmd device.
[assembly: SupportedOSPlatform("linux")]
