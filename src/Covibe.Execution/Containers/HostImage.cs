using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.Runtime.InteropServices;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Covibe.Execution.Containers;

/// <summary>
/// Builds the default agent image (<c>covibe-agent:local</c>) with no registry at all: a root
/// file system made from this machine's own installed Debian packages (a shell, coreutils, git,
/// Node.js and what they depend on), the .NET runtime and this build of <c>covibe</c> (for the
/// mock agent), imported into the engine. The production image is <c>deploy/agent/Containerfile</c>.
/// </summary>
public static class HostImage
{
    /// <summary>The packages the image starts from; their dependencies come along.</summary>
    public static readonly string[] Packages =
        ["dash", "bash", "coreutils", "util-linux", "procps", "findutils", "grep", "sed", "mawk", "diffutils", "tar", "gzip", "git", "ca-certificates", "nodejs", "less", "ncurses-base"];

    private static readonly string[] Skipped = ["/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/", "/usr/share/lintian/", "/usr/share/bug/"];

    /// <summary>Builds the image and tags it <paramref name="image"/>; reports what it does as it goes.</summary>
    public static async Task BuildAsync(DockerClient docker, string image, (uint Uid, uint Gid) user, IProgress<string> progress, CancellationToken cancellationToken)
    {
        var files = Collect(progress);
        var tar = Path.Combine(Path.GetTempPath(), $"covibe-image-{Guid.NewGuid():N}.tar");
        try
        {
            await WriteTarAsync(tar, files, user, progress, cancellationToken);
            var (repository, tag) = Split(image);
            string? id = null;
            var length = new FileInfo(tar).Length;
            progress.Report($"Importing {length / (1024 * 1024)} MiB into the container engine...");
            await using (var stream = File.OpenRead(tar))
            {
                await docker.Images.CreateImageAsync(new ImagesCreateParameters { FromSrc = "-", Repo = repository, Tag = tag }, stream, null,
                    new Progress<JSONMessage>(m => id = m.Status?.StartsWith("sha256:", StringComparison.Ordinal) == true ? m.Status : id), cancellationToken);
            }
            // Podman names an import "<repo>:latest" whatever tag was asked: name it as asked.
            await docker.Images.TagImageAsync(id ?? $"{repository}:latest", new ImageTagParameters { RepositoryName = repository, Tag = tag }, cancellationToken);
            progress.Report($"Built {image}.");
        }
        finally
        {
            File.Delete(tar);
        }
    }

    /// <summary>Every file of the packages and their dependencies, plus the .NET runtime and covibe: (path on this machine, path in the image).</summary>
    private static List<(string Source, string Target)> Collect(IProgress<string> progress)
    {
        var installed = InstalledPackages();
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>(Packages.Where(installed.ContainsKey));
        while (queue.Count > 0)
        {
            var package = queue.Dequeue();
            if (!wanted.Add(package))
            {
                continue;
            }
            foreach (var alternatives in installed[package].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                // "a (>= 1) | b": the first one installed here.
                var choice = alternatives.Split('|').Select(a => a.Trim().Split(' ')[0].Split(':')[0]).FirstOrDefault(installed.ContainsKey);
                if (choice is not null)
                {
                    queue.Enqueue(choice);
                }
            }
        }
        var files = new List<(string, string)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var package in wanted.Order(StringComparer.Ordinal))
        {
            var list = new[] { $"/var/lib/dpkg/info/{package}.list", $"/var/lib/dpkg/info/{package}:{DebianArchitecture()}.list" }.FirstOrDefault(File.Exists);
            foreach (var path in list is null ? [] : File.ReadLines(list))
            {
                if (path.Length > 1 && !Skipped.Any(s => path.StartsWith(s, StringComparison.Ordinal)) && seen.Add(path)
                    && (File.Exists(path) || new FileInfo(path).LinkTarget is not null))
                {
                    files.Add((path, path));
                }
            }
        }
        // Generated at install time, so in no package's list: the alternatives' links and the CA bundle.
        foreach (var directory in (string[])["/etc/alternatives", "/etc/ssl/certs"])
        {
            foreach (var path in Directory.Exists(directory) ? Directory.EnumerateFileSystemEntries(directory) : [])
            {
                if (seen.Add(path))
                {
                    files.Add((path, path));
                }
            }
        }
        // The .NET runtime (not the SDK) and this build of covibe, for the mock agent.
        var runtime = RuntimeEnvironment.GetRuntimeDirectory().TrimEnd('/');
        var dotnetRoot = Path.GetFullPath(Path.Combine(runtime, "..", "..", ".."));
        var version = Path.GetFileName(runtime);
        var frameworks = Directory.EnumerateDirectories(Path.Combine(dotnetRoot, "shared")).Select(f => Path.Combine(f, version)).Where(Directory.Exists);
        foreach (var directory in frameworks.Append(Path.Combine(dotnetRoot, "host")))
        {
            files.AddRange(Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Select(f => (f, f)));
        }
        files.Add((Path.Combine(dotnetRoot, "dotnet"), Path.Combine(dotnetRoot, "dotnet")));
        foreach (var file in Directory.EnumerateFiles(AppContext.BaseDirectory))
        {
            files.Add((file, "/opt/covibe/" + Path.GetFileName(file)));
        }
        progress.Report($"Collected {files.Count} files from {wanted.Count} installed packages, the .NET runtime and covibe.");
        return files;
    }

    private static async Task WriteTarAsync(string path, List<(string Source, string Target)> files, (uint Uid, uint Gid) user, IProgress<string> progress, CancellationToken cancellationToken)
    {
        var dotnetRoot = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        await using var stream = File.Create(path);
        await using var writer = new TarWriter(stream, TarEntryFormat.Pax);
        var directories = new HashSet<string>(StringComparer.Ordinal);
        async Task Directory(string name, UnixFileMode mode = (UnixFileMode)0b111_101_101, int uid = 0, int gid = 0)
        {
            if (directories.Add(name))
            {
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, name.TrimStart('/') + "/") { Mode = mode, Uid = uid, Gid = gid }, cancellationToken);
            }
        }
        async Task Parents(string target)
        {
            var parts = target.Split('/', StringSplitOptions.RemoveEmptyEntries);
            for (var i = 1; i < parts.Length; i++)
            {
                await Directory("/" + string.Join('/', parts[..i]));
            }
        }
        async Task Text(string name, string content, UnixFileMode mode = (UnixFileMode)0b110_100_100)
        {
            await Parents(name);
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name.TrimStart('/'))
            {
                Mode = mode,
                DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)),
            }, cancellationToken);
        }

        // Debian's merged /usr.
        foreach (var top in (string[])["bin", "sbin", "lib", "lib64"])
        {
            if (new FileInfo("/" + top).LinkTarget is { } link)
            {
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, top) { LinkName = link, Mode = (UnixFileMode)0b111_111_111 }, cancellationToken);
                directories.Add("/" + top);
            }
        }
        var written = 0;
        var targets = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (source, original) in files)
        {
            // /bin/bash and /usr/bin/bash are one file under merged /usr: one entry, at its real place.
            var target = MergedUsr(original);
            if (!targets.Add(target) || directories.Contains(target))
            {
                continue;
            }
            await Parents(target);
            if (System.IO.Directory.Exists(source) && new FileInfo(source).LinkTarget is null)
            {
                await Directory(target);
                continue;
            }
            await writer.WriteEntryAsync(source, target.TrimStart('/'), cancellationToken);
            if (++written % 2000 == 0)
            {
                progress.Report($"Packed {written} of {files.Count} files...");
            }
        }
        var (uid, gid) = (user.Uid.ToString(CultureInfo.InvariantCulture), user.Gid.ToString(CultureInfo.InvariantCulture));
        await Text("/etc/passwd", $"root:x:0:0:root:/root:/bin/bash\ncovibe:x:{uid}:{gid}:Covibe member:/workspace:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        await Text("/etc/group", $"root:x:0:\ncovibe:x:{gid}:\nnogroup:x:65534:\n");
        await Text("/etc/shells", "/bin/sh\n/bin/bash\n/usr/bin/bash\n");
        await Text("/usr/local/bin/covibe", $"#!/bin/sh\nexport DOTNET_ROOT={dotnetRoot}\nexec {dotnetRoot}/dotnet /opt/covibe/covibe.dll \"$@\"\n", (UnixFileMode)0b111_101_101);
        await Directory("/tmp", (UnixFileMode)0b1_111_111_111);
        await Directory("/root", (UnixFileMode)0b111_000_000);
        await Directory("/workspace", (UnixFileMode)0b111_101_101, (int)user.Uid, (int)user.Gid);
        await Directory("/covibe", (UnixFileMode)0b111_101_101, (int)user.Uid, (int)user.Gid);
        foreach (var mountPoint in (string[])["/proc", "/sys", "/dev", "/run"])
        {
            await Directory(mountPoint);
        }
        progress.Report($"Packed {written} files.");
    }

    private static string MergedUsr(string path)
    {
        foreach (var top in (string[])["/bin/", "/sbin/", "/lib/", "/lib64/"])
        {
            if (path.StartsWith(top, StringComparison.Ordinal) && new FileInfo(top.TrimEnd('/')).LinkTarget is { } link && !link.StartsWith('/'))
            {
                return "/" + link + path[(top.Length - 1)..];
            }
        }
        return path;
    }

    private static Dictionary<string, string> InstalledPackages()
    {
        var info = new ProcessStartInfo("dpkg-query", ["-W", "-f", "${Package}\t${db:Status-Status}\t${Pre-Depends}, ${Depends}\n"]) { RedirectStandardOutput = true };
        using var process = Process.Start(info) ?? throw new IOException("dpkg-query could not be run: the image is made from this machine's Debian packages.");
        var packages = new Dictionary<string, string>(StringComparer.Ordinal);
        string? line;
        while ((line = process.StandardOutput.ReadLine()) is not null)
        {
            var fields = line.Split('\t');
            if (fields.Length == 3 && fields[1] == "installed")
            {
                packages[fields[0]] = fields[2];
            }
        }
        process.WaitForExit();
        return packages;
    }

    private static string DebianArchitecture() => RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        _ => "amd64",
    };

    private static (string Repository, string Tag) Split(string image)
    {
        var colon = image.LastIndexOf(':');
        return colon > image.LastIndexOf('/') ? (image[..colon], image[(colon + 1)..]) : (image, "latest");
    }
}
