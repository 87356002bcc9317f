using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>
/// One lease primitive (issue 23): a box being made and a runner VM's connection hold leases in the <c>leases</c> table
/// (<c>box:&lt;id&gt;</c>, <c>runner:&lt;vm&gt;</c>), so the boxes' own lease columns and the VMs' copy of the runner's lease
/// go. Plain <c>ALTER TABLE ... DROP COLUMN</c>, which SQLite (3.35 and later, as bundled) and PostgreSQL both take; no
/// index names these columns. A box in the making when this runs is taken up again as after a restart.
/// </summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261206000100_OneLease")]
public sealed class OneLease : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("ALTER TABLE boxes DROP COLUMN lease_holder;");
        migrationBuilder.Sql("ALTER TABLE boxes DROP COLUMN lease_expires_at;");
        migrationBuilder.Sql("ALTER TABLE vms DROP COLUMN runner_lease_expires_at;");
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.AddColumn<string>(name: "lease_holder", table: "boxes", nullable: true);
        migrationBuilder.AddColumn<DateTime>(name: "lease_expires_at", table: "boxes", nullable: true);
        migrationBuilder.AddColumn<DateTime>(name: "runner_lease_expires_at", table: "vms", nullable: true);
    }
}
