using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Seed 003's container_environments table, and its team-specific feature flag (teams.use_containers).</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261126000800_ContainerEnvironments")]
public sealed class ContainerEnvironments : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "container_environments",
            columns: table => new
            {
                id = table.Column<int>(nullable: false)
                    .Annotation("Sqlite:Autoincrement", true)
                    .Annotation("Npgsql:ValueGenerationStrategy", Npgsql.EntityFrameworkCore.PostgreSQL.Metadata.NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                team_id = table.Column<string>(nullable: false),
                container_type = table.Column<string>(maxLength: 50, nullable: false),
                container_name = table.Column<string>(maxLength: 255, nullable: false),
                status = table.Column<string>(maxLength: 50, nullable: false),
                port = table.Column<int>(nullable: true),
                created_at = table.Column<DateTime>(nullable: false),
                updated_at = table.Column<DateTime>(nullable: false),
                metadata = table.Column<string>(nullable: false, defaultValue: "{}"),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_container_environments", x => x.id);
                table.ForeignKey("FK_container_environments_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
        // Seed 003's two indexes, and one to find a container's row by name.
        migrationBuilder.CreateIndex("idx_container_environments_team_id", "container_environments", "team_id");
        migrationBuilder.CreateIndex("idx_container_environments_status", "container_environments", "status");
        migrationBuilder.CreateIndex("IX_container_environments_container_name", "container_environments", "container_name");
        migrationBuilder.AddColumn<bool>(name: "use_containers", table: "teams", nullable: true);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable("container_environments");
        migrationBuilder.DropColumn(name: "use_containers", table: "teams");
    }
}
