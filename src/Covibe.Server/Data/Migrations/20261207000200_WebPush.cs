using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Web Push (issue 26): members' browser subscriptions (sealed) and the server's VAPID key pair (its private half sealed).</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261207000200_WebPush")]
public sealed class WebPush : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "push_subscriptions",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                user_id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                endpoint_hash = table.Column<string>(nullable: false),
                @sealed = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_push_subscriptions", x => x.id);
                table.ForeignKey("FK_push_subscriptions_users_user_id", x => x.user_id, "users", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex(name: "IX_push_subscriptions_endpoint_hash", table: "push_subscriptions", column: "endpoint_hash", unique: true);
        migrationBuilder.CreateIndex(name: "IX_push_subscriptions_team_id_user_id", table: "push_subscriptions", columns: ["team_id", "user_id"]);
        migrationBuilder.CreateTable(
            name: "push_keys",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                public_key = table.Column<string>(nullable: false),
                private_key = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table => table.PrimaryKey("PK_push_keys", x => x.id));
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable("push_keys");
        migrationBuilder.DropTable("push_subscriptions");
    }
}
