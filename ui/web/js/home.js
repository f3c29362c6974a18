import { requireRoles } from './session.js';
import { t } from './i18n.js';

/** The screens this server has, and who they are for (the API checks the same roles). */
export const SCREENS = [
  { path: '/dashboard', key: 'screen.dashboard', roles: ['manager', 'admin'] },
  { path: '/gate', key: 'screen.gate', roles: ['guard', 'manager', 'admin'] },
  { path: '/pda', key: 'screen.pda', roles: ['picker', 'manager', 'admin'] },
  { path: '/pack', key: 'screen.pack', roles: ['packer', 'manager', 'admin'] },
];

const me = await requireRoles(null);
if (me) {
  const list = document.getElementById('screens');
  const mine = SCREENS.filter((s) => s.roles.some((r) => me.roles.includes(r)));
  const render = () => {
    list.replaceChildren(
      ...mine.map((s) => {
        const li = document.createElement('li');
        const a = document.createElement('a');
        a.href = s.path;
        a.className = 'screen-link';
        const name = document.createElement('strong');
        name.textContent = t(s.key);
        const about = document.createElement('span');
        about.textContent = t(`${s.key}.about`);
        a.append(name, about);
        li.append(a);
        return li;
      }),
    );
  };
  render();
  document.addEventListener('langchange', render);
  document.getElementById('no-screens').hidden = mine.length > 0;
}
