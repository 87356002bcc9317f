using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Boxes and warm pools (seed 002), the leases that keep singletons on one node, and the box an agent runs in.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261126001100_Boxes")]
public sealed class Boxes : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "box_pools",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                repo_url = table.Column<string>(nullable: false),
                base_branch = table.Column<string>(nullable: false),
                min_standby = table.Column<int>(nullable: false),
                max_instances = table.Column<int>(nullable: false),
                source = table.Column<string>(nullable: false),
                backend = table.Column<string>(nullable: false),
                head_commit = table.Column<string>(nullable: true),
                head_checked_at = table.Column<DateTime>(nullable: true),
                misses = table.Column<long>(nullable: false),
                failures = table.Column<int>(nullable: false),
                last_error = table.Column<string>(nullable: true),
                resume_at = table.Column<DateTime>(nullable: true),
                paused_reason = table.Column<string>(nullable: true),
                created_at = table.Column<DateTime>(nullable: false),
                updated_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_box_pools", x => x.id);
                table.ForeignKey("FK_box_pools_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_box_pools_team_id_repo_url_base_branch", "box_pools", ["team_id", "repo_url", "base_branch"], unique: true);

        migrationBuilder.CreateTable(
            name: "boxes",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                pool_id = table.Column<string>(nullable: true),
                repo_url = table.Column<string>(nullable: false),
                branch = table.Column<string>(nullable: false),
                commit = table.Column<string>(nullable: true),
                requested_by = table.Column<string>(nullable: true),
                holder_id = table.Column<string>(nullable: true),
                status = table.Column<string>(nullable: false),
                step = table.Column<string>(nullable: false),
                backend = table.Column<string>(nullable: false),
                target = table.Column<string>(nullable: true),
                image = table.Column<string>(nullable: true),
                devcontainer = table.Column<bool>(nullable: false),
                run_as = table.Column<string>(nullable: true),
                workspace = table.Column<string>(nullable: true),
                env = table.Column<string>(nullable: true),
                error = table.Column<string>(nullable: true),
                created_at = table.Column<DateTime>(nullable: false),
                ready_at = table.Column<DateTime>(nullable: true),
                claimed_at = table.Column<DateTime>(nullable: true),
                claim_ms = table.Column<double>(nullable: true),
                released_at = table.Column<DateTime>(nullable: true),
                cleaned_at = table.Column<DateTime>(nullable: true),
                attempts = table.Column<int>(nullable: false),
                lease_holder = table.Column<string>(nullable: true),
                lease_expires_at = table.Column<DateTime>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_boxes", x => x.id);
                table.ForeignKey("FK_boxes_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
                table.ForeignKey("FK_boxes_users_holder_id", x => x.holder_id, "users", "id", onDelete: ReferentialAction.SetNull);
                table.ForeignKey("FK_boxes_box_pools_pool_id", x => x.pool_id, "box_pools", "id", onDelete: ReferentialAction.SetNull);
            });
        // The claim's query: a pool's ready boxes nobody holds, oldest first.
        migrationBuilder.CreateIndex("IX_boxes_pool_id_status_holder_id", "boxes", ["pool_id", "status", "holder_id"]);
        migrationBuilder.CreateIndex("IX_boxes_team_id_created_at", "boxes", ["team_id", "created_at"]);
        migrationBuilder.CreateIndex("IX_boxes_status", "boxes", "status");

        migrationBuilder.CreateTable(
            name: "leases",
            columns: table => new
            {
                name = table.Column<string>(nullable: false),
                holder = table.Column<string>(nullable: false),
                expires_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table => table.PrimaryKey("PK_leases", x => x.name));

        migrationBuilder.AddColumn<string>(name: "box_id", table: "agents", nullable: true);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropColumn(name: "box_id", table: "agents");
        migrationBuilder.DropTable("leases");
        migrationBuilder.DropTable("boxes");
        migrationBuilder.DropTable("box_pools");
    }
}
