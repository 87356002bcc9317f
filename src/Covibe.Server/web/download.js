// "Download the whole output": the open agent's output as the agent wrote it, read from the REST output API a page at a
// time (the page itself keeps only the newest part).

import { $, el, megabytes } from './dom.js';
import { api } from './session.js';
import { state } from './state.js';

/** Saves the open agent's whole output (as far as it goes now) as a file, a page of the API at a time, showing progress. */
export async function downloadOutput() {
  const view = state.view;
  const button = $('#output-download');
  const end = view.next;
  const parts = [];
  button.disabled = true;
  try {
    for (let from = 0; from < end;) {
      button.textContent = `Downloading… ${megabytes(from)} of ${megabytes(end)}`;
      const reply = await api(`/api/agent/${view.id}/output?from=${from}&limit=1048576`, { raw: true });
      const data = await reply.arrayBuffer();
      parts.push(data);
      const next = Number(reply.headers.get('Covibe-Next'));
      if (next <= from || reply.headers.get('Covibe-Complete') === 'true') break;
      from = next;
    }
    const link = el('a', { href: URL.createObjectURL(new Blob(parts, { type: 'text/plain' })), download: `agent-${view.id}.log` });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    button.textContent = 'Download the whole output';
  } catch (error) {
    button.textContent = `Download failed: ${error.message} Try again`;
  } finally {
    button.disabled = false;
  }
}
