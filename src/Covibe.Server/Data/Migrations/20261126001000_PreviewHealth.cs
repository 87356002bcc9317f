using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>The path a deploy answers its health check on, so the live version is checked on it all along (seed 003's health checks).</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261126001000_PreviewHealth")]
public sealed class PreviewHealth : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) =>
        migrationBuilder.AddColumn<string>(name: "health_path", table: "preview_deploys", nullable: true);

    protected override void Down(MigrationBuilder migrationBuilder) =>
        migrationBuilder.DropColumn(name: "health_path", table: "preview_deploys");
}
