/**
 * Signing in: the form for the long-lived token (the local stack's admin token, which only
 * the user who started the stack can read from .data/admin-token). The one-time login URL
 * that `wecom-sync console` prints never shows this page: it signs in and redirects at once.
 */
import { html } from '../html';
import type { PageContext } from '../layout';
import { page, type Outcome } from './types';

export function loginPage(ctx: PageContext, failed = false): Outcome {
  const { t } = ctx;
  return page(
    t('console.login.title'),
    undefined,
    html`${failed ? html`<p class="flash error" role="alert">${t('console.login.failed')}</p>` : ''}
<form method="post" action="${ctx.base}/login" class="panel login">
<label for="token">${t('console.login.token')}</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<button type="submit" class="primary">${t('console.login.signIn')}</button>
<p class="muted small">${t('console.login.hint')}</p>
</form>`,
    failed ? 401 : 200,
  );
}
