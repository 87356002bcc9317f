using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Each team's egress policy (issue 24): the owner's mode and allowlist, and the team's number at the egress proxy (unique).</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261206000200_Egress")]
public sealed class Egress : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.AddColumn<string>(name: "egress_mode", table: "teams", maxLength: 20, nullable: true);
        migrationBuilder.AddColumn<string>(name: "egress_allow", table: "teams", nullable: true);
        migrationBuilder.AddColumn<int>(name: "egress_slot", table: "teams", nullable: true);
        migrationBuilder.CreateIndex("IX_teams_egress_slot", "teams", "egress_slot", unique: true);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropIndex("IX_teams_egress_slot", "teams");
        migrationBuilder.DropColumn(name: "egress_slot", table: "teams");
        migrationBuilder.DropColumn(name: "egress_allow", table: "teams");
        migrationBuilder.DropColumn(name: "egress_mode", table: "teams");
    }
}
