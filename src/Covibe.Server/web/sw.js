// The service worker (issue 26): Web Push messages become notifications even with the page closed (a phone in a pocket);
// tapping one opens the agent it is about, in an open tab if there is one.

self.addEventListener('push', (event) => {
  let note = { title: 'Covibe', body: '', url: '/', tag: 'covibe' };
  try { note = { ...note, ...event.data.json() }; } catch { /* an empty or foreign message: the default text */ }
  event.waitUntil(self.registration.showNotification(note.title, {
    body: note.body, tag: note.tag, icon: '/icon.svg', data: { url: note.url, agentId: note.agentId ?? null },
    // A request waits for someone: it stays until answered or dismissed.
    requireInteraction: Boolean(note.requestId),
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const { url = '/', agentId = null } = event.notification.data ?? {};
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((w) => new URL(w.url).origin === self.location.origin);
    if (open) {
      await open.focus();
      if (agentId) open.postMessage({ type: 'open_agent', agentId });
      return;
    }
    await self.clients.openWindow(new URL(url, self.location.origin).href);
  })());
});
