/**
 * Which page origins may open a WebSocket (`--allowed-origins`). A browser sends the `token` cookie with
 * a WebSocket that a page of any other site opens, and a WebSocket is not held by the same-origin
 * policy: a token taken from the cookie therefore counts only when the page is the server's own origin
 * (its `Origin` names the host the request was sent to) or a listed one. Without a list, an upgrade
 * whose token came from elsewhere (the query, `Authorization`) or that brings no token is not checked:
 * its credentials are the page's own doing, not the browser's. With a list, every upgrade that carries
 * an `Origin` is checked. A client that is not a browser sends no `Origin` and is never refused for it.
 */

/** One entry of `--allowed-origins`, checked when the options are. */
export function isOriginPattern(entry: string): boolean {
  if (entry === '*') return true;
  const match = /^(?:(https?):\/\/)?(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::(\d{1,5}))?$/i.exec(entry);
  return match !== null && (match[4] === undefined || Number(match[4]) <= 65_535);
}

/**
 * Whether a page of `origin` may open a WebSocket here: it is the server's own (`host`, the request's
 * `Host` header), or matches an entry of `allowed`: `*` (any), an exact origin (`https://app.example.com`,
 * `http://127.0.0.1:8080`), a host in any scheme (`app.example.com`), or a pattern whose `*.` stands
 * for one or more labels (`https://*.example.com`, `*.example.com`; not `example.com` itself).
 */
export function originAllowed(origin: string, host: string, allowed: readonly string[]): boolean {
  const page = parseOrigin(origin);
  if (page === null) return allowed.includes('*');
  if (host !== '' && page.host === hostOf(page.scheme, host)) return true;
  return allowed.some((entry) => entry === '*' || matches(page, entry));
}

interface PageOrigin {
  scheme: string;
  /** Lower case, with the port only when it is not the scheme's default (as URL's `host`). */
  host: string;
  hostname: string;
}

function parseOrigin(origin: string): PageOrigin | null {
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return { scheme: url.protocol.slice(0, -1), host: url.host, hostname: url.hostname };
  } catch {
    return null; // 'null' (a sandboxed page, a file), or not an origin at all
  }
}

/** The `Host` header as URL's `host` has it (lower case, no default port), or '' when it is not one. */
function hostOf(scheme: string, host: string): string {
  try {
    return new URL(`${scheme}://${host}`).host;
  } catch {
    return '';
  }
}

function matches(page: PageOrigin, entry: string): boolean {
  const scheme = /^(https?):\/\//i.exec(entry);
  if (scheme && scheme[1].toLowerCase() !== page.scheme) return false;
  const rest = (scheme ? entry.slice(scheme[0].length) : entry).toLowerCase();
  const wildcard = rest.startsWith('*.');
  const pattern = wildcard ? rest.slice(2) : rest;
  const target = hostOf(page.scheme, pattern);
  // An entry without a port matches the page's host on its default port only, as an origin would.
  if (!wildcard) return target === page.host;
  const suffix = `.${target}`;
  return page.host.endsWith(suffix) && page.host.length > suffix.length;
}
