/**
 * The operator console: browser pages over the same CliTarget as the CLI.
 *
 *   createConsole({ target, token?, operator?, basePath? }) → { handle(req, res), loginUrl(origin) }
 *       the request handler, for the local stack to mount at /console behind its local-caller
 *       check (token = the admin token), and for ./server.ts.
 *   serveConsole({ console, port?, host? }) → a loopback-only server of its own
 *       (`wecom-sync console`, tests).
 */
export { createConsole, type ConsoleOptions, type OperatorConsole } from './app';
export { serveConsole, type ConsoleServer } from './server';
export { operatorIdentity } from './identity';
