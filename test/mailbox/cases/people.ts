/**
 * The people the cases create, and the retry a queue gives an operation: every case speaks
 * canonical values, as the engine does.
 */
import { MailboxError, type MailboxAccountInput } from '../../../functions/mailbox/directory';

export type NewAccount = MailboxAccountInput & { employeeId: string; email: string; displayName: string };

export const zhangsan: NewAccount = {
  employeeId: 'zhangsan',
  email: 'zhangsan@example.com',
  displayName: '张三',
  mobile: '+8613800138000',
  telephone: '+861088886666',
  jobTitle: '工程师',
  department: '技术部/研发组',
};

export const ouyang: NewAccount = {
  employeeId: 'ouyangnana',
  email: 'OuYang.NaNa@Example.com',
  displayName: '欧阳娜娜',
  mobile: '+8613900139000',
  jobTitle: '产品经理',
  department: '市场部',
};

export function numbered(i: number): NewAccount {
  return { employeeId: `p${i}`, email: `p${i}@example.com`, displayName: `第${i}号`, jobTitle: `职位${i}` };
}

/**
 * What the queue does with a message whose run failed retryably: run it again (here at once;
 * the adapters under test do not sleep). A non-retryable error, or one that outlives the
 * attempts, is the case's failure.
 */
export async function eventually<T>(op: () => Promise<T>, attempts = 30): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof MailboxError) || !err.retryable || i >= attempts) throw err;
    }
  }
}
