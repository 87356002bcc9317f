using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Agents that run on a member's VM over SSH.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261122000600_AgentVms")]
public sealed class AgentVms : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) =>
        migrationBuilder.AddColumn<string>(name: "vm_id", table: "agents", nullable: true);

    protected override void Down(MigrationBuilder migrationBuilder) =>
        migrationBuilder.DropColumn(name: "vm_id", table: "agents");
}
