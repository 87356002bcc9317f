# Seed 004's Python client, as written in the seed. The test replaces the uri and token
# literals, and the last line (not in the seed) runs it.
import asyncio
import websockets
import json

async def terminal_client():
    uri = "ws://localhost:8787"
    token = "your_jwt_token"
    
    async with websockets.connect(
        uri,
        extra_headers={"Authorization": f"Bearer {token}"}
    ) as websocket:
        
        # Create session
        await websocket.send(json.dumps({
            "type": "session",
            "action": "create",
            "id": "session-123"
        }))
        
        # Execute command
        await websocket.send(json.dumps({
            "type": "command",
            "id": "cmd-123",
            "session": "session-123",
            "command": "ls -la"
        }))
        
        # Receive output
        async for message in websocket:
            data = json.loads(message)
            if data["type"] == "output":
                print(data["data"])

asyncio.run(terminal_client())
