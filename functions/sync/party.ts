/**
 * A department subject: WeCom tells us only Id/ParentId (and nothing at all on a rename), so
 * re-read the tree, make sure the department's group exists under its current path, and when
 * the path changed (rename or move) re-sync the members we stored under the old path — their
 * runs move them between groups. A deleted department is audited; nothing is destroyed.
 */
import type { StateRecord } from '../store/ports';
import type { RunContext } from './context';
import { departmentPath } from './tree';
import { partySubject, type Subject } from '../core/model';
import { putState } from './state-record';
import { resolveAuthority } from './authority';

export async function syncParty(ctx: RunContext, id: string): Promise<void> {
  const { departments, state, mailbox } = ctx.deps;
  departments.invalidate();
  // Department groups mirror WeCom's departments only while departments flow from WeCom
  // (with the mailbox as the source, its own department attribute is the record).
  if (resolveAuthority(ctx.deps.config).departments !== 'wecom') {
    ctx.count('noop');
    return;
  }
  const tree = await departments.get();
  const subject = partySubject(id);
  const s = await state.get(subject);
  const path = departmentPath(tree, Number(id));

  if (path === undefined) {
    if (s && s.status !== 'deleted') {
      await putState(ctx, { ...s, status: 'deleted' });
      await ctx.audit({ action: 'skip', target: 'mailbox', reason: `department deleted in WeCom; its group (${s.targetId ?? 'none'}) is kept` });
    }
    return;
  }

  const oldPath = typeof s?.fields.path === 'string' ? s.fields.path : undefined;
  if (s && oldPath === path && s.targetId && s.status === 'active') {
    ctx.count('noop');
    return;
  }
  const groupId = await ctx.write(() => mailbox.ensureGroup(path), `dry-run:${path}`);
  // Audited before the state write: a crash in between re-runs the (idempotent) ensureGroup
  // and audits it once more, rather than finding the state done and never auditing it.
  await ctx.audit({
    action: s ? 'update' : 'create',
    target: 'mailbox',
    changes: [{ field: 'path', ...(oldPath !== undefined ? { old: oldPath } : {}), new: path }],
    reason: oldPath && oldPath !== path ? 'department renamed or moved' : 'department group ensured',
  });
  const record: StateRecord = {
    ...(s ?? { subject, wecomId: id, provider: mailbox.provider, sensitive: {}, lastSyncedAt: '', version: 0, fields: {} }),
    targetId: groupId,
    status: 'active',
    fields: { path },
  };
  await putState(ctx, record);
  if (oldPath && oldPath !== path) await resyncMembers(ctx, oldPath);
}

/** Enqueue a re-sync of every person whose stored departments are at or under `oldPath`. */
async function resyncMembers(ctx: RunContext, oldPath: string): Promise<void> {
  const { state, enqueue } = ctx.deps;
  if (!enqueue) return;
  const under = (p: unknown) => typeof p === 'string' && (p === oldPath || p.startsWith(`${oldPath}/`));
  const subjects: Subject[] = [];
  let cursor: string | undefined;
  do {
    const page = await state.listPage('user', cursor);
    for (const r of page.records) if (Array.isArray(r.fields.departments) && r.fields.departments.some(under)) subjects.push(r.subject);
    cursor = page.next;
  } while (cursor);
  if (!subjects.length || ctx.dryRun) return;
  const receivedAt = ctx.deps.now().toISOString();
  for (let i = 0; i < subjects.length; i += 10) {
    await enqueue(
      subjects.slice(i, i + 10).map((subject) => ({
        v: 1 as const,
        subject,
        source: ctx.message.source,
        eventId: `${ctx.message.eventId}:moved`,
        hint: 'department_moved',
        operator: ctx.message.operator,
        receivedAt,
      })),
    );
  }
}
