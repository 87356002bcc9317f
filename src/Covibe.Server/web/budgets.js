// The team's budgets in the Workshop's Spend card (GET /api/team/budgets, docs/api.md): each one with what was spent
// against it, the warning when one is reached (budget_reached on the hub: new agents are refused, the running keep
// running), and the owner's form to set or remove the team's or each member's.
import { $, el } from './dom.js';

// As the server writes amounts: cents, and below a dollar up to four decimals ($0.01, $0.0123, $0.025).
const usd = (value) => `$${value >= 1 || value === 0 ? value.toFixed(2) : value.toFixed(4).replace(/0{1,2}$/, '')}`;
const PER = { day: 'today', month: 'this month' };

export function createBudgets({ api, isOwner }) {
  let budgets = null;

  function whose(b) {
    if (b.scope === 'team') return 'The team';
    return b.memberId ? b.memberName ?? 'A member' : 'Each member (you)';
  }

  function render() {
    if (!budgets) return;
    $('#budgets').replaceChildren(...budgets.budgets.map((b) => el('li', { className: `budget${b.reached ? ' reached' : ''}` },
      el('span', { className: 'budget-name' }, `${whose(b)} · per ${b.period}`),
      // Green, amber from 80%, red when spent (the meter's optimum is spending nothing).
      el('meter', { min: 0, max: b.limitUsd || 1, low: (b.limitUsd || 1) * 0.8, high: (b.limitUsd || 1) * 0.999, optimum: 0,
        value: Math.min(b.spentUsd, b.limitUsd || 1), 'aria-label': `${whose(b)} per ${b.period}` }),
      el('span', { className: 'spend-amount' }, `${usd(b.spentUsd)} of ${usd(b.limitUsd)} ${PER[b.period]}${b.reached ? ' · reached' : ''}`))));
    const ceiling = budgets.ceiling;
    const limits = [ceiling.teamUsdPerDay != null ? `${usd(ceiling.teamUsdPerDay)} a day` : null, ceiling.teamUsdPerMonth != null ? `${usd(ceiling.teamUsdPerMonth)} a month` : null].filter(Boolean);
    $('#budgets-ceiling').textContent = limits.length ? `This server lets a team spend at most ${limits.join(' and ')}.` : '';
    $('#budget-form').hidden = !isOwner();
  }

  async function refresh() {
    try {
      budgets = await api('/api/team/budgets');
      render();
    } catch {
      // The spend above says it could not be read; budgets are read again with it.
    }
  }

  async function change(limitUsd) {
    const form = $('#budget-form');
    const [scope, memberId] = form.elements.scope.value === 'each' ? ['member', null] : ['team', null];
    $('#budget-error').textContent = '';
    try {
      budgets = await api('/api/team/budgets', { method: 'PUT', body: { scope, memberId, period: form.elements.period.value, limitUsd } });
      render();
    } catch (error) {
      $('#budget-error').textContent = error.message;
    }
  }

  $('#budget-form').addEventListener('submit', (event) => {
    event.preventDefault();
    change(Number(event.target.elements.limit.value));
  });
  $('#budget-remove').addEventListener('click', () => change(null));

  return {
    refresh,
    /** A budget was reached (budget_reached): everyone sees why new agents are refused; the spend is read again. */
    onReached(message) {
      const warning = $('#budget-warning');
      warning.textContent = message.message;
      warning.hidden = false;
      refresh();
    },
  };
}
