using Microsoft.Extensions.FileProviders;

namespace Covibe.Server.Hosting;

/// <summary>
/// The web client (plain ES modules, no build step): files in <c>web/</c>, copied beside the
/// server's binaries and served from <c>/</c> with a strict content security policy.
/// </summary>
public static class WebClient
{
    public static WebApplication UseWebClient(this WebApplication app)
    {
        var root = Path.Combine(AppContext.BaseDirectory, "web");
        if (!Directory.Exists(root))
        {
            return app;
        }
        var files = new PhysicalFileProvider(root);
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            ContentTypeProvider = ContentTypes(),
            OnPrepareResponse = context =>
            {
                var headers = context.Context.Response.Headers;
                // xterm.js sizes and themes the terminal through <style> elements it creates, hence
                // 'unsafe-inline' for styles only; scripts stay 'self'.
                headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-src *; base-uri 'none'; form-action 'self'";
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "no-referrer";
                // Revalidate every load: the files are small, and a new server must not run an old client.
                headers.CacheControl = "no-cache";
            },
        });
        return app;
    }

    private static Microsoft.AspNetCore.StaticFiles.FileExtensionContentTypeProvider ContentTypes()
    {
        var provider = new Microsoft.AspNetCore.StaticFiles.FileExtensionContentTypeProvider();
        provider.Mappings[".webmanifest"] = "application/manifest+json";
        provider.Mappings[".js"] = "text/javascript";
        return provider;
    }
}
