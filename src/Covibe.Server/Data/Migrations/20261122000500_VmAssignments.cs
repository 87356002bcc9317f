using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Which pool VM each member is assigned (seed 000's assignVMToUser).</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261122000500_VmAssignments")]
public sealed class VmAssignments : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "vm_assignments",
            columns: table => new
            {
                user_id = table.Column<string>(nullable: false),
                instance_id = table.Column<string>(nullable: false),
                assigned_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_vm_assignments", x => x.user_id);
                table.ForeignKey("FK_vm_assignments_users_user_id", x => x.user_id, "users", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_vm_assignments_instance_id", "vm_assignments", "instance_id");
    }

    protected override void Down(MigrationBuilder migrationBuilder) => migrationBuilder.DropTable("vm_assignments");
}
