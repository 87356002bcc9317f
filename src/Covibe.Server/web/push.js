// Web Push on this device (issue 26): the service worker, and the subscription the server sends an agent's requests to,
// so a phone hears them with the page closed. Without push support, the page's own notifications still work while open.

export function createPush({ api, openAgent }) {
  const supported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

  async function registration() {
    return navigator.serviceWorker.register('/sw.js', { scope: '/' });
  }

  /** Asks for permission and subscribes this browser; says what came of it. */
  async function enable() {
    if (!('Notification' in window)) return 'Notifications are not available in this browser';
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') return 'Notifications blocked';
    if (!supported) return 'Notifications on (while this page is open)';
    try {
      const worker = await registration();
      const { publicKey } = await api('/api/push/key');
      const subscription = await worker.pushManager.getSubscription()
        ?? await worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: publicKey });
      await api('/api/push/subscriptions', { method: 'POST', body: subscription.toJSON() });
      return 'Notifications on (also with this page closed)';
    } catch (error) {
      return `Notifications on while this page is open (push: ${error.message})`;
    }
  }

  /** At start: the worker is registered again (it updates), and a tapped notification opens its agent here. */
  function start() {
    if (!supported) return;
    registration().catch(() => {});
    navigator.serviceWorker.addEventListener('message', (event) => {
      if (event.data?.type === 'open_agent') openAgent(event.data.agentId);
    });
  }

  return { enable, start };
}
