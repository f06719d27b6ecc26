import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { maskEmail, maskOpaque, maskPhone, redact, redactText } from '../../functions/core/redact';

const MOBILES = ['13800138000', '+8613800138000', '138 0013 8000', '+86-138-0013-8000', '+86 138 0013 8000', '138-0013-8000'];
/** The 7 middle digits of the sample number: none of the masked forms may show them together. */
const MIDDLE = '0013800';
const AES_KEY = 'kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR'; // 43-char EncodingAESKey shape
const HEX_KEY = randomBytes(32).toString('hex');
const B64_KEY = randomBytes(32).toString('base64');
const TOKEN = 'GW6Jx3RvbVfCq9Ynz0Hk2Lsd8Pq1Mn4oTtU7-wXyZaBcDeFgHiJkLmNoPqRsTuVwXyZ_01234';

function digitsOf(text: string): string {
  return text.replace(/\D/g, '');
}

describe('maskPhone / maskEmail / maskOpaque', () => {
  it.each(MOBILES)('masks %s keeping at most the first 3 and last 4 national digits', (m) => {
    const masked = maskPhone(m);
    expect(masked).toMatch(/^(\+86)?138\*{4}8000$/);
    expect(digitsOf(masked)).not.toContain(MIDDLE.slice(0, 4));
  });

  it('masks short and foreign numbers with at least 4 digits hidden', () => {
    expect(maskPhone('8888-6666')).toBe('88****66');
    expect(maskPhone('+1 415 555 0100')).toBe('+141****0100');
    expect(maskPhone('123')).toBe('****');
  });

  it('masks emails and opaque values', () => {
    expect(maskEmail('zhang.san@qq.com')).toBe('z***@qq.com');
    expect(maskEmail('nonsense')).toBe('***');
    expect(maskOpaque('abc')).toBe('****');
    expect(maskOpaque('北京市海淀区')).toBe('****(6)');
  });
});

describe('redactText', () => {
  it.each(MOBILES)('masks the mobile number in "%s" inside free text', (m) => {
    const out = redactText(`member update failed for ${m}, retrying`);
    expect(digitsOf(out)).not.toContain(MIDDLE);
    expect(out).not.toContain(m);
    expect(out).toContain('****');
    expect(out).toMatch(/^member update failed for .*, retrying$/);
  });

  it('masks emails, bearer tokens, token query parameters, JSON secrets and keys', () => {
    const out = redactText(
      `to zhang.san@qq.com; GET /cgi-bin/user/get?access_token=abc123short&userid=zs; ` +
        `Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig; body {"corpsecret":"s3cr3t","x":1}; ` +
        `aes ${AES_KEY} hex ${HEX_KEY} b64 ${B64_KEY} tok ${TOKEN}`,
    );
    for (const secret of ['zhang.san', 'abc123short', 'eyJhbGciOi', 's3cr3t', AES_KEY, HEX_KEY, B64_KEY, TOKEN]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('z***@qq.com');
    expect(out).toContain('access_token=****&userid=zs');
    expect(out).toContain('Bearer ****');
  });

  it('keeps provider error codes readable, masks long random tokens whatever their alphabet', () => {
    expect(redactText('Graph POST /users failed: 400 Request_BadRequest/ObjectConflict')).toContain('Request_BadRequest/ObjectConflict');
    expect(redactText('401 InvalidAuthenticationToken_InvalidAuthenticationToken')).toContain('InvalidAuthenticationToken_InvalidAuthenticationToken');
    for (let i = 0; i < 500; i++) {
      const token = randomBytes(30).toString('base64url');
      expect(redactText(`got ${token} back`)).not.toContain(token);
    }
    // Letters only, but not words: still masked.
    for (const t of ['xKqZpTrWmNbVcXlKjHgFdSaPoIuYtReWqAb', 'abcdefghijklmnopqrstuvwxyzabcdefghij', 'YvxxwwOxvqVcnqhwExtMexnxxfDxxxDdIbNxxyUx']) {
      expect(redactText(t)).toBe(`****(${t.length})`);
    }
  });

  it('keeps dates, UUIDs, short ids and epoch seconds readable', () => {
    const text = 'deleteAfter 2026-12-01T00:00:00.000Z target 123e4567-e89b-12d3-a456-426614174000 user:20230001 dept 12 at 1767225600';
    expect(redactText(text)).toBe(text);
  });
});

describe('redact (structured)', () => {
  it('redacts secret-named keys and masks values and error messages deeply', () => {
    const out = redact({
      userid: 'zhangsan',
      contact: { mobile: '+8613800138000', note: 'personal mail zhang.san@qq.com' },
      list: ['138 0013 8000'],
      encodingAESKey: AES_KEY,
      accessToken: 'short',
      err: new Error('WeCom 60104: mobile +86-138-0013-8000 exists'),
    });
    const text = JSON.stringify(out);
    expect(text).not.toContain('zhang.san');
    expect(digitsOf(text)).not.toContain(MIDDLE);
    expect(text).not.toContain(AES_KEY);
    expect(text).not.toContain('short');
    expect(out).toMatchObject({ userid: 'zhangsan', encodingAESKey: '[redacted]', accessToken: '[redacted]', err: { name: 'Error' } });
    expect((out as { err: { message: string } }).err.message).toMatch(/^WeCom 60104: mobile \+86138\*{4}8000 exists$/);
  });
});

describe('functions/log.ts (Powertools logger, LOG_LEVEL=INFO)', () => {
  let written: string[];
  const saved = process.env.LOG_LEVEL;
  beforeEach(() => {
    written = [];
    process.env.LOG_LEVEL = 'INFO';
    vi.resetModules(); // log.ts reads LOG_LEVEL when it is loaded
    const capture = (chunk: unknown) => {
      written.push(String(chunk));
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture as typeof process.stdout.write);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture as typeof process.stderr.write);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  });

  it('writes structured JSON with no mobile, email, token or key in clear', async () => {
    const { log } = await import('../../functions/core/log');
    log.info('synced user with mobile 138 0013 8000 and mail zhang.san@qq.com', {
      subject: 'user:zhangsan',
      mobile: '+86-138-0013-8000',
      fields: { telephone: '+8613800138000', personalEmail: 'zhang.san@qq.com' },
      url: `https://qyapi.weixin.qq.com/cgi-bin/user/get?access_token=${TOKEN}&userid=zhangsan`,
      encodingAESKey: AES_KEY,
      dataKey: B64_KEY,
      detail: `key material ${HEX_KEY}`,
    });
    log.error('graph call failed', { err: new Error(`conflict on 13800138000 / zhang.san@qq.com (token ${TOKEN})`) });
    log.warn(`callback with echostr=${AES_KEY}`);

    const lines = written.join('').trim().split('\n');
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({ level: 'INFO', subject: 'user:zhangsan', service: expect.any(String) });
    expect(parsed[1]).toMatchObject({ level: 'ERROR', message: 'graph call failed' });
    const all = lines.join('\n');
    for (const secret of ['zhang.san', TOKEN, AES_KEY, B64_KEY, HEX_KEY]) expect(all).not.toContain(secret);
    expect(digitsOf(all)).not.toContain(MIDDLE);
    expect(all).toContain('z***@qq.com');
    expect(all).toContain('138****8000');
  });

  it('drops DEBUG at INFO level', async () => {
    const { log } = await import('../../functions/core/log');
    log.debug('hidden');
    log.info('shown');
    expect(written.join('')).not.toContain('hidden');
    expect(written.join('')).toContain('shown');
  });
});
