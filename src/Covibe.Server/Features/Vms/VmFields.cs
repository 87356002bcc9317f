using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Covibe.Server.Features.Secrets;
using Covibe.Server.Http;

namespace Covibe.Server.Features.Vms;

/// <summary>An SSH VM's fields as a member sends them, checked field by field; and its credential sealed for the store.</summary>
internal static partial class VmFields
{
    public static string Seal(SecretBox secrets, Vm vm, byte[] credential)
    {
        try
        {
            return secrets.Seal(credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(credential);
        }
    }

    public static string Host(Validator v, string? value)
    {
        var host = v.Text("host", value, 253);
        if (host.Length > 0 && !HostName().IsMatch(host))
        {
            v.Fail("host", "'host' must be a host name or IP address (letters, digits, '.', '-', ':'; not starting with '-').");
        }
        return host;
    }

    public static int Port(Validator v, int? value)
    {
        var port = value ?? 22;
        if (port is < 1 or > 65535)
        {
            v.Fail("port", "'port' must be between 1 and 65535.");
        }
        return port;
    }

    public static string User(Validator v, string? value)
    {
        var user = v.Text("username", value, 32);
        if (user.Length > 0 && !UserName().IsMatch(user))
        {
            v.Fail("username", "'username' must be a Unix user name (letters, digits, '_', '.', '-'; not starting with '-').");
        }
        return user;
    }

    public static (string? Method, byte[]? Credential) Credential(Validator v, string? privateKey, string? password, bool required)
    {
        if (privateKey is not null && password is not null)
        {
            v.Fail("privateKey", "Send either 'privateKey' or 'password', not both.");
            return (null, null);
        }
        if (privateKey is not null)
        {
            if (!privateKey.TrimStart().StartsWith("-----BEGIN", StringComparison.Ordinal) || !privateKey.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            {
                v.Fail("privateKey", "'privateKey' must be a private key in PEM/OpenSSH form (-----BEGIN ... PRIVATE KEY-----).");
                return (null, null);
            }
            var text = privateKey.Trim() + "\n";
            return ("key", Encoding.UTF8.GetBytes(text));
        }
        if (password is not null)
        {
            if (password.Length is < 1 or > 1024)
            {
                v.Fail("password", "'password' must be 1 to 1024 characters.");
                return (null, null);
            }
            return ("password", Encoding.UTF8.GetBytes(password));
        }
        if (required)
        {
            v.Fail("privateKey", "Send 'privateKey' (recommended) or 'password' for the VM's user.");
        }
        return (null, null);
    }

    [GeneratedRegex(@"^([A-Za-z0-9][A-Za-z0-9.-]*|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$")]
    private static partial Regex HostName();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_.-]*$")]
    private static partial Regex UserName();
}
