using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Where an agent runs is a backend and a target (a VM, a container), not only a VM.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261126000700_AgentTargets")]
public sealed class AgentTargets : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) =>
        migrationBuilder.RenameColumn(name: "vm_id", table: "agents", newName: "target");

    protected override void Down(MigrationBuilder migrationBuilder) =>
        migrationBuilder.RenameColumn(name: "target", table: "agents", newName: "vm_id");
}
