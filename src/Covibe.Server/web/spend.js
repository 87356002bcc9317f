// What the team's agents spent, in the Workshop: a bar a day for the last two weeks, the total, and who spent it
// (GET /api/agent/costs, docs/api.md). Read when the team is joined and again whenever an agent ends.
import { $, el } from './dom.js';

const DAYS = 14;
const usd = (value) => `$${value.toFixed(value >= 1 ? 2 : 4)}`;
const agentsCount = (n) => `${n} agent${n === 1 ? '' : 's'}`;

export function createSpend({ api }) {
  let reading = null;
  let again = false;

  /** Reads the spend again; asked while a read is under way, it reads once more after it. */
  async function refresh() {
    if (reading) {
      again = true;
      return reading;
    }
    reading = (async () => {
      do {
        again = false;
        try {
          render(await api(`/api/agent/costs?days=${DAYS}`));
        } catch {
          $('#spend-summary').textContent = 'The spend could not be read; it is read again when an agent ends.';
        }
      } while (again);
    })();
    try {
      await reading;
    } finally {
      reading = null;
    }
  }

  function render(costs) {
    $('#spend-summary').textContent = costs.agents === 0
      ? `Nothing spent in the last ${DAYS} days.`
      : `${usd(costs.totalUsd)} in the last ${DAYS} days, by ${agentsCount(costs.agents)}.`;
    const most = Math.max(0, ...costs.byDay.map((d) => d.costUsd));
    const chart = $('#spend-chart');
    chart.replaceChildren(...costs.byDay.map((d) => {
      const bar = el('span', { className: `spend-bar${d.costUsd > 0 ? ' spent' : ''}` });
      // A day with any spend shows, however small beside the largest.
      bar.style.height = most > 0 && d.costUsd > 0 ? `${Math.max(6, Math.round((d.costUsd / most) * 100))}%` : '0';
      return el('span', { className: 'spend-day', title: `${d.day}: ${usd(d.costUsd)}, ${agentsCount(d.agents)}` }, bar);
    }));
    const spentDays = costs.byDay.filter((d) => d.costUsd > 0);
    chart.setAttribute('aria-label', spentDays.length === 0 ? 'No spend by day'
      : `Spend by day: ${spentDays.map((d) => `${d.day} ${usd(d.costUsd)}`).join(', ')}`);
    $('#spend-members').replaceChildren(...costs.byMember.map((m) => el('li', { className: 'spend-member' },
      el('span', { className: 'spend-name' }, m.name),
      el('span', { className: 'spend-amount' }, `${usd(m.costUsd)} · ${agentsCount(m.agents)}`))));
  }

  return { refresh };
}
