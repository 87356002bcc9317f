using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>
/// Runner VMs (seed 001's polling and tunnel strategies: the VM dials out): hashes of the one-time registration token and
/// of the runner's credential (and of the one it is rotating away from), its lease, what it said it is; and every VM's
/// append-only audit log (seed 001: "audit logging all VM access").
/// </summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261126001200_Runners")]
public sealed class Runners : Migration
{
    private static readonly string[] Columns = ["runner_registration_hash", "runner_credential_hash", "runner_previous_credential_hash", "runner_hostname", "runner_version"];

    protected override void Up(MigrationBuilder migrationBuilder)
    {
        foreach (var column in Columns)
        {
            migrationBuilder.AddColumn<string>(name: column, table: "vms", nullable: true);
        }
        migrationBuilder.AddColumn<DateTime>(name: "runner_registration_expires_at", table: "vms", nullable: true);
        migrationBuilder.AddColumn<DateTime>(name: "runner_lease_expires_at", table: "vms", nullable: true);
        migrationBuilder.CreateIndex("IX_vms_runner_registration_hash", "vms", "runner_registration_hash", unique: true);
        migrationBuilder.CreateIndex("IX_vms_runner_credential_hash", "vms", "runner_credential_hash", unique: true);

        migrationBuilder.CreateTable(
            name: "vm_audit",
            columns: table => new
            {
                id = table.Column<long>(nullable: false)
                    .Annotation("Sqlite:Autoincrement", true)
                    .Annotation("Npgsql:ValueGenerationStrategy", Npgsql.EntityFrameworkCore.PostgreSQL.Metadata.NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                vm_id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                at = table.Column<DateTime>(nullable: false),
                actor = table.Column<string>(nullable: false),
                actor_id = table.Column<string>(nullable: true),
                action = table.Column<string>(nullable: false),
                detail = table.Column<string>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_vm_audit", x => x.id);
                table.ForeignKey("FK_vm_audit_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_vm_audit_vm_id_id", "vm_audit", ["vm_id", "id"]);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable("vm_audit");
        migrationBuilder.DropIndex("IX_vms_runner_credential_hash", "vms");
        migrationBuilder.DropIndex("IX_vms_runner_registration_hash", "vms");
        foreach (var column in Columns)
        {
            migrationBuilder.DropColumn(name: column, table: "vms");
        }
        migrationBuilder.DropColumn(name: "runner_registration_expires_at", table: "vms");
        migrationBuilder.DropColumn(name: "runner_lease_expires_at", table: "vms");
    }
}
