// What the web client knows of the signed-in member's team, shared by its modules.

export const FINAL = new Set(['completed', 'failed', 'killed', 'lost']);

export const state = {
  token: null,
  tokenExpires: 0,
  refreshTimer: null,
  me: null,
  team: null,
  agents: new Map(),
  presence: [],
  lastChatId: 0,
  oldestChatId: null,
  view: null, // the open agent's output view: output.js's newView() says what it holds
  tab: 'deck',
  types: new Map(),
};
