using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>
/// Merging an agent's branch (issue 25, point 4): its final summary (proposed as the commit message's body), and the base
/// commit an update from base left to resolve.
/// </summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261206000500_AgentMerges")]
public sealed class AgentMerges : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.AddColumn<string>(name: "summary", table: "agents", nullable: true);
        migrationBuilder.AddColumn<string>(name: "merge_parent", table: "agents", nullable: true);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropColumn(name: "merge_parent", table: "agents");
        migrationBuilder.DropColumn(name: "summary", table: "agents");
    }
}
