namespace Covibe.Server.Http;

public static class RequestOrigin
{
    /// <summary><c>scheme://host[:port]</c> as the client reached this server (behind a trusted proxy: as the proxy says).</summary>
    public static string Origin(this HttpRequest request) => $"{request.Scheme}://{request.Host}";
}
