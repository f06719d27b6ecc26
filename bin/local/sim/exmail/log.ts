/**
 * `POST log/operation {type, begin_date, end_date}` (系统日志 app): the records of the whole
 * days begin..end in the tenant's calendar (Beijing time by default), filtered by category
 * (0 = all; 1 开放协议同步 — API writes; 7 成员与群组管理 — console edits of members and groups, as
 * numbered on qqbizmail.com/api/407.html). Dates must be YYYY-MM-DD, begin ≤ end, and the span
 * at most `logMaxRangeDays` days (the real limit is not published; 40058 is assumed). No
 * paging, no record id; the answer is NEWEST FIRST on purpose (the order is not documented:
 * the adapter must sort).
 */
import { answer, type Route, type SimContext } from './context';

const DAY = 86_400;

export function logRoute(ctx: SimContext): Route {
  const off = ctx.opts.logUtcOffsetMinutes * 60;
  const dayStart = (date: unknown): number | undefined => {
    if (typeof date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
    const ms = Date.parse(`${date}T00:00:00Z`);
    if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== date) return undefined;
    return ms / 1000 - off;
  };
  return (req) => {
    if (req.api !== 'log/operation') return undefined;
    const { type, begin_date, end_date } = req.body;
    const from = dayStart(begin_date);
    const to = dayStart(end_date);
    if (from === undefined || to === undefined || from > to || !Number.isInteger(type)) return answer(40058);
    if ((to - from) / DAY + 1 > ctx.opts.logMaxRangeDays) return answer(40058, { errmsg: 'date range too long' });
    const end = to + DAY;
    const list: Array<Record<string, unknown>> = [];
    for (const r of ctx.state.log.values()) {
      if (r.time < from || r.time >= end || (type !== 0 && r.category !== type)) continue;
      list.push({ time: r.time, operator: r.operator, type: r.type, operand: r.operand, ...(r.remark !== undefined ? { remark: r.remark } : {}) });
    }
    return answer(0, { list: list.reverse() });
  };
}
