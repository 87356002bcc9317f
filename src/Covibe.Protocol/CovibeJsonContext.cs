using System.Text.Json;
using System.Text.Json.Serialization;

namespace Covibe.Protocol;

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CreateTeamRequest))]
[JsonSerializable(typeof(CreateTeamResponse))]
[JsonSerializable(typeof(LoginRequest))]
[JsonSerializable(typeof(RefreshRequest))]
[JsonSerializable(typeof(LogoutRequest))]
[JsonSerializable(typeof(AuthResponse))]
[JsonSerializable(typeof(CreateInviteRequest))]
[JsonSerializable(typeof(InviteResponse))]
[JsonSerializable(typeof(InviteSummary[]))]
[JsonSerializable(typeof(TeamResponse))]
[JsonSerializable(typeof(MeResponse))]
[JsonSerializable(typeof(PostChatMessageRequest))]
[JsonSerializable(typeof(ChatMessageDto))]
[JsonSerializable(typeof(ChatHistoryResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(JoinTeamMessage))]
[JsonSerializable(typeof(SendChatMessage))]
[JsonSerializable(typeof(PresenceUpdateMessage))]
[JsonSerializable(typeof(TeamJoinedMessage))]
[JsonSerializable(typeof(ChatMessageEvent))]
[JsonSerializable(typeof(TeamPresenceMessage))]
[JsonSerializable(typeof(ErrorMessage))]
[JsonSerializable(typeof(JsonElement))]
public sealed partial class CovibeJsonContext : JsonSerializerContext;
