using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Invites that expire and can be revoked, and login sessions with rotating refresh tokens.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261122000200_SessionsAndInvites")]
public sealed class SessionsAndInvites : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "invites",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                code_hash = table.Column<string>(nullable: false),
                created_by = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
                expires_at = table.Column<DateTime>(nullable: false),
                max_uses = table.Column<int>(nullable: true),
                uses = table.Column<int>(nullable: false),
                revoked_at = table.Column<DateTime>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_invites", x => x.id);
                table.ForeignKey("FK_invites_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_invites_code_hash", "invites", "code_hash", unique: true);
        migrationBuilder.CreateIndex("IX_invites_team_id", "invites", "team_id");

        migrationBuilder.CreateTable(
            name: "sessions",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                user_id = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
                expires_at = table.Column<DateTime>(nullable: false),
                revoked_at = table.Column<DateTime>(nullable: true),
                revoked_reason = table.Column<string>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_sessions", x => x.id);
                table.ForeignKey("FK_sessions_users_user_id", x => x.user_id, "users", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_sessions_user_id", "sessions", "user_id");

        migrationBuilder.CreateTable(
            name: "refresh_tokens",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                session_id = table.Column<string>(nullable: false),
                token_hash = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
                expires_at = table.Column<DateTime>(nullable: false),
                used_at = table.Column<DateTime>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_refresh_tokens", x => x.id);
                table.ForeignKey("FK_refresh_tokens_sessions_session_id", x => x.session_id, "sessions", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_refresh_tokens_token_hash", "refresh_tokens", "token_hash", unique: true);
        migrationBuilder.CreateIndex("IX_refresh_tokens_session_id", "refresh_tokens", "session_id");
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable("refresh_tokens");
        migrationBuilder.DropTable("sessions");
        migrationBuilder.DropTable("invites");
    }
}
